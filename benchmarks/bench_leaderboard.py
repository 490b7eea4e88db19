"""Leaderboard timings, measured in one process: import, read, site build, and the page in headless chromium.

    python benchmarks/bench_leaderboard.py          (the browser part needs scripts/install-browser.sh)

Prints medians of 5 repeats.
"""
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from rftbench.leaderboard.importer import import_guide2025
from rftbench.leaderboard.entry import read_entries_jsonl
from rftbench.leaderboard.build import build_site
from rftbench_leaderboard import GUIDE2025_CSV, ENTRIES_DIR

def med(f, n):
    ts=[]
    for _ in range(n):
        t=time.perf_counter(); r=f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts), r
t_imp,_=med(lambda: import_guide2025(GUIDE2025_CSV), 5)
t_read,es=med(lambda: read_entries_jsonl(ENTRIES_DIR/'guide2025.jsonl'), 5)
out=Path(tempfile.mkdtemp())
rows=[('published',e) for e in es]
t_build,idx=med(lambda: build_site(rows, out), 5)
print(f"import csv (1440 rows -> sealed entries): median {t_imp*1000:.0f} ms")
print(f"read+validate+hash-check jsonl (1440):    median {t_read*1000:.0f} ms")
print(f"build site (render + write):              median {t_build*1000:.0f} ms; index.html {idx.stat().st_size/1e6:.2f} MB, entries.jsonl {(out/'entries.jsonl').stat().st_size/1e6:.2f} MB")

if not (shutil.which("chromium") and shutil.which("chromedriver")):
    raise SystemExit("no chromium/chromedriver: run scripts/install-browser.sh for the browser timings")
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
o=webdriver.ChromeOptions(); o.binary_location=shutil.which('chromium')
for a in ("--headless=new","--no-sandbox","--disable-gpu","--disable-dev-shm-usage","--window-size=1400,1800"): o.add_argument(a)
d=webdriver.Chrome(service=Service(shutil.which('chromedriver')), options=o)
loads=[]; sorts=[]; filts=[]
for i in range(5):
    d.get(idx.as_uri()+f"?r={i}")
    WebDriverWait(d,60).until(lambda d: d.execute_script("return document.body.dataset.ready==='1'"))
    loads.append(d.execute_script("return performance.now()"))
    sorts.append(d.execute_script("const t=performance.now(); document.querySelector('th[data-key=clean]').click(); return performance.now()-t"))
    filts.append(d.execute_script("""const s=document.getElementById('filter-dataset'); const t=performance.now(); s.value='caltech101'; s.dispatchEvent(new Event('change'));
      return new Promise(r=>requestAnimationFrame(()=>setTimeout(()=>r(performance.now()-t),0)))"""))
d.quit()
print(f"chromium: page ready (navigation->plots drawn) median {statistics.median(loads):.0f} ms; sort 1440 rows median {statistics.median(sorts):.0f} ms; filter + redraw plots median {statistics.median(filts):.0f} ms (n=5)")
