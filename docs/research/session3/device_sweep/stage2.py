"""Build the confirmation grid: the top N stage-1 configs on fresh LJ13 seeds, LJ19, R, A."""
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
grid1 = {e["label"]: e["kw"] for e in json.load(open(sys.argv[2]))}
n = int(sys.argv[4])
score = {}
for r in rows:
    if r["problem"] == "lj13" and r["label"] not in ("adam", "default"):
        score[r["label"]] = score.get(r["label"], 0) + bool(r["success"])
top = sorted(score, key=lambda k: -score[k])[:n]
print("top:", [(k, score[k]) for k in top])
grid = [{"label": "adam", "kw": "adam", "problems": ["lj13"], "seeds": [100, 140]},
        {"label": "default", "kw": {}, "problems": ["lj13"], "seeds": [100, 140]}]
for k in top:
    grid.append({"label": k, "kw": grid1[k], "problems": ["lj13"], "seeds": [100, 140]})
    grid.append({"label": k, "kw": grid1[k], "problems": ["lj19", "rastrigin", "ackley"],
                 "seeds": [0, 20]})
json.dump(grid, open(sys.argv[3], "w"))
