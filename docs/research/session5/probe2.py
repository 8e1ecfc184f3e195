import sys, time, torch, statistics
from azure_sciml.optim import Azure
from azure_sciml.train import fit
from azure_sciml.problems.energy import LennardJones
torch.set_num_threads(1)
lens=[]; deltas=[]
orig = Azure._metropolis
def patched(self, value):
    g = self.state["azure"]
    lens.append(g["step"]-g["pending_since"]); deltas.append((value-g["anchor_loss"], g["uphill"]))
    return orig(self, value)
Azure._metropolis = patched
n_atoms = int(sys.argv[1])
for seed in range(int(sys.argv[2]), int(sys.argv[3])):
    lens.clear(); deltas.clear()
    prob = LennardJones(n_atoms=n_atoms); n = prob.steps
    sched = lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [int(0.9*n), int(0.95*n)], 0.1)
    r = fit(prob, lambda p: Azure(p, lr=prob.lr, sa_steps=int(0.9*n)), seed=seed, scheduler=sched)
    g = r.optimizer.state["azure"]
    print(seed, "gap %.3g k0 %s R %s" % (r.metrics["gap"], g["sa_start"], g["descent"]), "lens", lens, "D %.2f" % (g["uphill"] or 0))
    print("   deltas", [round(d,2) for d,_ in deltas])
