"""Parallel research sweep: python sweep.py GRID.json OUT.jsonl [workers]"""
import functools, itertools, json, statistics, sys, time
from multiprocessing import Pool

import torch

PROBS = {
    "lj13": ("azure_sciml.problems.energy", "LennardJones", dict(n_atoms=13)),
    "lj19": ("azure_sciml.problems.energy", "LennardJones", dict(n_atoms=19)),
    "lj26": ("azure_sciml.problems.energy", "LennardJones", dict(n_atoms=26)),
    "rastrigin": ("azure_sciml.problems.rugged", "RuggedFunction", dict(name="rastrigin", dim=20)),
    "ackley": ("azure_sciml.problems.rugged", "RuggedFunction", dict(name="ackley", dim=20)),
}


def job(args):
    label, pname, seed, kw = args
    torch.set_num_threads(1)
    import importlib
    sys.path.insert(0, '/tmp/s5')
    from research import RAzure as Azure
    from azure_sciml.train import fit
    mod, cls, pk = PROBS[pname]
    prob = getattr(importlib.import_module(mod), cls)(**pk)
    n = prob.steps
    sched = lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [int(0.9 * n), int(0.95 * n)], 0.1)
    if kw == "adam":
        make = functools.partial(torch.optim.Adam, lr=prob.lr, foreach=True)
    else:
        kw = dict(kw)
        gkw = kw.pop("g", {})

        def make(params):
            opt = Azure(params, lr=prob.lr, sa_steps=int(0.9 * n), **kw)
            opt.state["azure"].update(gkw)  # research knobs set after construction
            return opt
    r = fit(prob, make, seed=seed, scheduler=sched)
    st = r.optimizer.stats() if hasattr(r.optimizer, "stats") else {}
    ret = r.optimizer.state["azure"].get("n_returned") if hasattr(r.optimizer, "stats") else None
    m = r.metrics
    return dict(label=label, problem=pname, seed=seed, gap=m.get("gap"), value=m.get("value"),
                success=m.get("success"), status=r.status, prop=st.get("n_proposals"),
                acc=st.get("n_accepted"), wall=r.wall_time_s if hasattr(r, "wall_time_s") else None, ret=ret)


def main():
    grid = json.load(open(sys.argv[1]))
    jobs = []
    for entry in grid:
        a, b = entry["seeds"]
        for pname, seed in itertools.product(entry["problems"], range(a, b)):
            jobs.append((entry["label"], pname, seed, entry["kw"]))
    jobs.sort(key=lambda j: j[1] != "lj19")  # longest first
    t = time.time()
    rows = []
    with Pool(int(sys.argv[3]) if len(sys.argv) > 3 else 16) as pool, open(sys.argv[2], "w") as f:
        for row in pool.imap_unordered(job, jobs, chunksize=1):
            rows.append(row)
            f.write(json.dumps(row) + "\n")
    print(f"# {len(rows)} runs in {time.time() - t:.0f} s")
    by = {}
    for r in rows:
        by.setdefault((r["label"], r["problem"]), []).append(r)
    for (label, p), rs in sorted(by.items()):
        if p.startswith("lj"):
            s = f"succ {sum(bool(r['success']) for r in rs)}/{len(rs)} median gap {statistics.median(r['gap'] for r in rs):.3g}"
        else:
            s = f"median {statistics.median(r['value'] for r in rs):.4g}"
        bad = sum(r["status"] != "ok" for r in rs)
        print(f"{label:28s} {p:9s} {s}  bad={bad} prop={statistics.median(r['prop'] or 0 for r in rs)}")


if __name__ == "__main__":
    main()
