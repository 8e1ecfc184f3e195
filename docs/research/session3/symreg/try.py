"""symreg set with a looser 'quiet' threshold for the stall rule: python try.py QUIET"""
import functools, json, sys
from multiprocessing import Pool
import torch

TARGETS = ["damped_oscillation", "nguyen1", "x_sin_x", "square_wave", "rc_charging", "spring_energy"]

def job(args):
    quiet, target, seed = args
    torch.set_num_threads(1)
    import azure_sciml.optim as optim
    from azure_sciml import Azure, fit
    from azure_sciml.problems.symreg import SymbolicRegression
    orig = optim.Azure._stalled
    def stalled(self, value):
        g = self.state["azure"]
        best, last = g["watch_loss"], g["last_loss"]
        g["jitter"] += 0.0 if last is None else abs(value - last)
        g["last_loss"] = value
        if best is None or value < best - optim._STALL_TOL * abs(best):
            g["watch_loss"], g["watch_since"], g["jitter"] = value, g["step"], 0.0
            return g["sa_patience"] == 0
        waited = g["step"] - g["watch_since"]
        return waited >= g["sa_patience"] and g["jitter"] <= quiet * abs(best) * waited
    optim.Azure._stalled = stalled
    prob = SymbolicRegression(target=target)
    n = prob.steps
    sched = lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [int(0.9 * n), int(0.95 * n)], 0.1)
    r = fit(prob, functools.partial(Azure, lr=prob.lr, sa_steps=int(0.9 * n)), seed=seed, scheduler=sched)
    st = r.optimizer.stats()
    return dict(quiet=quiet, target=target, seed=seed, rec=r.metrics["recovered"], rmse=r.metrics["test_rmse"], prop=st["n_proposals"], k0=r.optimizer.state["azure"]["sa_start"])

if __name__ == "__main__":
    quiet = float(sys.argv[1])
    jobs = [(quiet, t, s) for t in TARGETS for s in range(10)]
    with Pool(2) as pool:
        rows = pool.map(job, jobs, chunksize=1)
    json.dump(rows, open(f"/tmp/sr/q{quiet}.json", "w"))
    tot = sum(r["rec"] for r in rows)
    print("quiet", quiet, "recovered", tot, "/60; proposals median", sorted(r["prop"] for r in rows)[30])
    for t in TARGETS:
        rs = [r for r in rows if r["target"] == t]
        print(t, sum(r["rec"] for r in rs), [r["prop"] for r in rs])
