"""Research subclass of Azure with knobs read from state['azure'] (set after construction)."""
import math, torch
from azure_sciml.optim import Azure, _GLOBAL


class RAzure(Azure):
    @torch.no_grad()
    def step(self, closure=None):
        g = self.state[_GLOBAL]
        loss = None
        skip_update = raised = False
        if closure is not None:
            try:
                with torch.enable_grad():
                    loss = closure()
            except FloatingPointError:
                if not self._can_restore():
                    raise
                loss, raised = torch.tensor(math.nan), True
            g["n_loss_evals"] += 1
            skip_update = self._judge(float(torch.as_tensor(loss).detach()))
            since = g["pending_since"]
            if since is not None and not skip_update and g.get("descent"):
                into = g["step"] - since
                if into > 0 and into % g["sa_interval"] == 0 and self._restart_ok(into, float(loss)):
                    self._fresh_adam(self._exploring_params())
        boost = g.get("descent_lr")
        boosted = boost is not None and g["pending_since"] is not None and self._converging()
        if not skip_update:
            for group in self.param_groups:
                if boosted:
                    lr = group["lr"]
                    group["lr"] = lr * boost
                    self._adam_group(group)
                    group["lr"] = lr
                else:
                    self._adam_group(group)
        if not raised:
            self._explore(with_closure=closure is not None)
        g["step"] += 1
        return loss

    def _restart_ok(self, into, value):
        g = self.state[_GLOBAL]
        mode = g.get("restart_mode")
        if mode is None:
            return True
        if mode == "blocks":  # only the first n blocks restart
            return into <= g["restart_blocks"] * g["sa_interval"]
        if mode == "drop":  # restart while the last block dropped the loss by more than f D
            prev = g.get("rs_prev")
            g["rs_prev"] = value
            if into == g["sa_interval"] or prev is None or g["uphill"] is None:
                return True
            return prev - value > g["restart_drop"] * g["uphill"]
        raise ValueError(mode)

    def _judgement_due(self, into, value):
        g = self.state[_GLOBAL]
        f = g.get("return_frac")
        K = g["sa_interval"]
        if f is not None and into > 0 and into % K == 0 and into >= g.get("return_min", 0):
            params = [p for p in self._sa_params() if "anchor" in self.state[p]]
            d2 = sum(float((p - self.state[p]["anchor"]).square().sum()) for p in params)
            if into == K or "d0" not in g or g.get("d0_since") != g["pending_since"]:
                pass
            p0 = g.get("prop_d2")
            if p0 is not None and d2 < f * f * p0:
                g["n_returned"] = g.get("n_returned", 0) + 1
                return True
        return super()._judgement_due(into, value)

    def _propose_group(self, group, step, scale, with_closure):
        super()._propose_group(group, step, scale, with_closure)
        g = self.state[_GLOBAL]
        if g.get("return_frac") is not None:
            params = [p for p in self._sa_params() if "anchor" in self.state[p]]
            g["prop_d2"] = sum(float((p - self.state[p]["anchor"]).square().sum()) for p in params)


def _stalled(self, value):
    import azure_sciml.optim as optim
    g = self.state[_GLOBAL]
    quiet = g.get("quiet", optim._STALL_TOL)
    best, last = g["watch_loss"], g["last_loss"]
    g["jitter"] += 0.0 if last is None else abs(value - last)
    g["last_loss"] = value
    if best is None or value < best - optim._STALL_TOL * abs(best):
        g["watch_loss"], g["watch_since"], g["jitter"] = value, g["step"], 0.0
        return g["sa_patience"] == 0
    waited = g["step"] - g["watch_since"]
    return waited >= g["sa_patience"] and g["jitter"] <= quiet * abs(best) * waited


RAzure._stalled = _stalled


_orig_noise = Azure._noise


def _noise(self, params):
    out = _orig_noise(self, params)
    g = self.state[_GLOBAL]
    rho = g.get("density")
    if rho is None or g["anchor_loss"] is None:
        return out
    gen = self._generator(params[0].device)
    boost = g.get("density_boost", 1.0)
    for t in out:
        shape = (t.shape[0],) + (1,) * (t.dim() - 1) if g.get("density_rows") and t.dim() > 1 else t.shape
        mask = torch.rand(shape, generator=gen, dtype=t.dtype, device=t.device) < rho
        t.mul_(mask).mul_(boost)
    return out


def _add_noise(self, params, size):
    torch._foreach_add_(params, self._noise(params), alpha=size)


RAzure._noise = _noise
RAzure._add_noise = _add_noise
