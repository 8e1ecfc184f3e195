"""Shared by the optimizer tests: drive an optimizer on a loss of its parameters."""

MODES = (True, False, "loss")  # step(closure), a bare step(), step(loss=loss)


def make_driver(loss_of):
    """``drive(opt, params, steps, closure=True)``: ``steps`` steps on ``loss_of(params)``, with a
    closure (True), with gradients computed before a bare ``step()`` (False), or with the loss
    handed over as ``step(loss=loss)`` ("loss")."""

    def drive(opt, params, steps, closure=True):
        for _ in range(steps):

            def f():
                opt.zero_grad()
                loss = loss_of(params)
                loss.backward()
                return loss

            if closure is True:
                opt.step(f)
            elif closure == "loss":
                opt.step(loss=f())
            else:
                f()
                opt.step()

    return drive
