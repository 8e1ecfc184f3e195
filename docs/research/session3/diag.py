import sys, json, functools, torch
torch.set_num_threads(1)
from azure_sciml.train import fit
from azure_sciml.optim import Azure
from azure_sciml.problems.energy import LennardJones
kw = json.loads(sys.argv[1]); n_atoms = int(sys.argv[2]) if len(sys.argv) > 2 else 13
prob = LennardJones(n_atoms=n_atoms); n = prob.steps
sched = lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [int(0.9*n), int(0.95*n)], 0.1)
for s in range(10):
    anchors = []
    class A(Azure):
        def _save(self, name, value):
            if name == "anchor": anchors.append((self.state["azure"]["step"], round(value, 3)))
            super()._save(name, value)
    r = fit(prob, functools.partial(A, lr=prob.lr, sa_steps=int(0.9*n), **kw), seed=s, scheduler=sched)
    g = r.optimizer.state["azure"]
    E = prob.global_minimum
    print(s, "gap %.3f" % r.metrics["gap"], "best_loss-E* %.3f" % (r.best_loss - E), "start_anchor %.3f" % (anchors[0][1]-E),
          "min anchor %.3f" % (min(a[1] for a in anchors)-E), r.optimizer.stats()["n_accepted"], r.optimizer.stats()["n_proposals"], "uphillD %.3g" % (g["uphill"] or 0))
