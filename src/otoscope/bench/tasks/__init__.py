"""The benchmark's tasks, one generator per file; :data:`TASKS` in suite order."""

from otoscope.bench.tasks import asr_word, ctc_word, keyword, noise_robust, nonspeech, text_context
from otoscope.bench.tasks.base import Task

TASKS: dict[str, Task] = {t.name: t for t in (asr_word.TASK, keyword.TASK, noise_robust.TASK, text_context.TASK,
                                               nonspeech.TASK, ctc_word.TASK)}

__all__ = ["TASKS", "Task"]
