import torch, numpy as np, functools
torch.set_num_threads(1)
from azure_sciml.problems.energy import LennardJones, lj_energy, random_cluster
from scipy.optimize import minimize
E = -44.326801
def relax(x):
    def f(v):
        with torch.enable_grad():
            t = torch.tensor(v.reshape(-1, 3), requires_grad=True, dtype=torch.float64)
            e = lj_energy(t); e.backward(); return float(e.detach()), t.grad.numpy().ravel()
    r = minimize(f, x.ravel(), jac=True, method="L-BFGS-B", options=dict(maxiter=3000, gtol=1e-9))
    return r.x.reshape(-1, 3), r.fun
torch.manual_seed(0)
res = {}
for trial in range(20):
    x0, _ = relax(random_cluster(13, 1.0, 0.8).numpy())
    x = x0 + 0.24 * np.random.RandomState(trial).randn(13, 3)
    _, erel = relax(x)
    for name, b2, clip in [("none", .999, None), ("geo2", .999, "geo2"), ("every10", .999, 10), ("every20", .999, 20), ("geo1.5", .999, "geo1.5"), ("clip10", .999, "clip10")]:
        p = torch.tensor(x, dtype=torch.float32, requires_grad=True)
        opt = torch.optim.Adam([p], lr=0.01, betas=(0.9, b2))
        out = []
        for k in range(200):
            opt.zero_grad(); e = lj_energy(p); e.backward()
            if clip == "clip10": torch.nn.utils.clip_grad_norm_([p], 10.0)
            elif clip == "geo2" and k in (4, 8, 16, 32, 64, 128): opt.state.clear()
            elif clip == "geo1.5" and k in (4, 6, 9, 14, 21, 32, 48, 72, 108, 162): opt.state.clear()
            elif isinstance(clip, int) and k and k % clip == 0: opt.state.clear()
            opt.step()
            if k + 1 in (10, 30, 50, 100, 200): out.append(float(e) - erel)
        res.setdefault(name, []).append(out)
for k, v in res.items():
    print(k, "median excess over its relaxed basin at 10/30/50/100/200 steps:", np.round(np.median(np.array(v), 0), 3))
