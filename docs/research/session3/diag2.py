import sys, json, functools, torch
torch.set_num_threads(1)
from azure_sciml.train import fit
from azure_sciml.optim import Azure
from azure_sciml.problems.energy import LennardJones, lj_energy
from scipy.optimize import minimize
import numpy as np
kw = json.loads(sys.argv[1]); seeds = range(*map(int, sys.argv[2].split("-")))
prob = LennardJones(n_atoms=13); n = prob.steps; E = prob.global_minimum
sched = lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [int(0.9*n), int(0.95*n)], 0.1)
def relax(x):
    def f(v):
        torch.set_grad_enabled(True); t = torch.tensor(v.reshape(-1, 3), requires_grad=True, dtype=torch.float64)
        e = lj_energy(t); e.backward(); return float(e), t.grad.numpy().ravel()
    prev = torch.is_grad_enabled(); r = minimize(f, x.ravel(), jac=True, method="L-BFGS-B", options=dict(maxiter=2000, gtol=1e-8))
    torch.set_grad_enabled(prev); return r.fun - E
for s in seeds:
    log = []
    class A(Azure):
        def _metropolis(self, value):
            g = self.state["azure"]
            x = self.param_groups[0]["params"][0].detach().double().numpy().copy()
            anc = g["anchor_loss"]
            acc = super()._metropolis(value)
            log.append((g["step"], value - E, anc - E, relax(x), acc))
            return acc
    r = fit(prob, functools.partial(A, lr=prob.lr, sa_steps=int(0.9*n), **kw), seed=s, scheduler=sched)
    rel = [l[3] for l in log]
    print(f"seed {s} gap {r.metrics['gap']:.3f} nprop {len(log)} relaxed basins of proposals: min {min(rel):.3f} "
          f"distinct<{log[0][2]:.2f}: {sum(x < log[0][2]-0.05 for x in rel)}  accepted {sum(l[4] for l in log)}")
    for l in log[:: max(1, len(log)//12)]:
        print("   step %d desc %.3f anchor %.3f relaxed %.3f acc %d" % l)
