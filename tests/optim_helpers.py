"""Shared by the optimizer tests: drive an optimizer on a loss of its parameters."""


def make_driver(loss_of):
    """``drive(opt, params, steps, closure=True)``: ``steps`` steps on ``loss_of(params)``, with a
    closure or with gradients computed before a bare ``step()``."""

    def drive(opt, params, steps, closure=True):
        for _ in range(steps):

            def f():
                opt.zero_grad()
                loss = loss_of(params)
                loss.backward()
                return loss

            if closure:
                opt.step(f)
            else:
                f()
                opt.step()

    return drive
