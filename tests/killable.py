"""A problem whose process SIGKILLs itself at loss evaluation ``$KILL_AT_EVAL`` (unset: never), so
a test can kill a real run mid-way without putting the kill into the run's config."""

import os
import signal

from toy_problem import Toy


class Killable(Toy):
    def __init__(self, steps: int = 60):
        kill_at = os.environ.get("KILL_AT_EVAL")
        super().__init__(steps=steps, kill_at=int(kill_at) if kill_at else None)

    def loss(self, model):
        if self.kill_at is not None and self.n_evals + 1 == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().loss(model)
