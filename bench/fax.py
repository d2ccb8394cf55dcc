"""FAX reception capacity on this machine: N citizens' FAX machines send at once over G.711
(the modem in software at both ends: the heaviest case; T.38 carries no audio), N growing
until a reception fails. Also the CPU each received page costs: Asterisk receiving
(spandsp demodulating G.711) and the engine's PDF conversion (tiff2pdf, as fax/files.py runs
it). Prints a table.

  .venv/bin/python -m bench.fax                      # 1, 2, 4, 8, ... up to 256 at once
  .venv/bin/python -m bench.fax --levels 1,4,8 --pages 2

The sending machines are a second Asterisk on the same machine (harness/fax_peer.py), whose
modems use CPU too: the figures are for both ends on one machine, a lower bound of what the
centre alone could take. Needs root and the Asterisk root file system (like `make run`).
Not a test: it asserts nothing and is not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from core.fax import IN_DIR, META_SUFFIX, parse_meta
from fax.files import tiff_to_pdf
from harness.fax_pages import make_document
from harness.fax_peer import CentreTrunk, FaxPeer, PeerPorts
from harness.stack_setup import madoguchi_cmd

ROOT = Path(__file__).resolve().parents[1]
BASE = 27000  # ports of this benchmark's two Asterisks (the e2e stack uses 20000 and up)
ROOTFS = Path(os.environ.get("MADOGUCHI_ROOTFS", "/var/cache/madoguchi/asterisk-sid"))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def find_asterisk(root_pid: int, timeout: float = 30) -> int:
    """The asterisk process started by root_pid (itself, or a descendant)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parents: dict[int, int] = {}
        names: dict[int, str] = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            names[int(proc.name)] = stat[stat.index("(") + 1:stat.rindex(")")]
            parents[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        for pid, name in names.items():
            p = pid
            while p > 1 and p != root_pid:  # itself when it exec'd asterisk
                p = parents.get(p, 1)
            if p == root_pid and name == "asterisk":
                return pid
        time.sleep(0.5)
    raise RuntimeError("asterisk did not start")


def centre_config(folder: Path) -> tuple[Path, Path]:
    config, state = folder / "config", folder / "state"
    shutil.copytree(ROOT / "config", config)
    main = yaml.safe_load((config / "madoguchi.yaml").read_text(encoding="utf-8"))
    main["engine"] = {"http": {"host": "127.0.0.1", "port": BASE + 80},
                      "fastagi": {"host": "127.0.0.1", "port": BASE + 45}}
    main["asterisk"]["ami"]["port"] = BASE + 38
    main["asterisk"]["sip"]["port"] = BASE + 60
    main["asterisk"]["rtp"] = {"start": BASE + 1000, "end": BASE + 1999}
    main["transfers"]["city_pbx"]["port"] = BASE + 90
    main["fax"]["udptl"] = {"start": BASE + 500, "end": BASE + 599}
    (config / "madoguchi.yaml").write_text(yaml.safe_dump(main, allow_unicode=True),
                                           encoding="utf-8")
    subprocess.run(madoguchi_cmd(config, state, "pbx", "config"), check=True, cwd=ROOT,
                   capture_output=True)
    return config, state


def run_level(peer: FaxPeer, spool: Path, tiff: Path, n: int, pages: int,
              centre_pid: int, peer_pid: int) -> dict[str, float | int | str]:
    before = set(spool.glob(f"*{META_SUFFIX}"))
    cpu0, peer0, t0 = cpu_seconds(centre_pid), cpu_seconds(peer_pid), time.monotonic()
    tags = [uuid.uuid4().hex[:12] for _ in range(n)]
    for tag in tags:
        peer.send(tiff, t38=False, tag=tag)
    results = []
    for tag in tags:
        try:
            results.append(peer.wait_result("send", tag, timeout=300))
        except TimeoutError:
            results.append({"Status": "TIMEOUT"})
    wall = time.monotonic() - t0
    cpu, peer_cpu = cpu_seconds(centre_pid) - cpu0, cpu_seconds(peer_pid) - peer0
    time.sleep(1)  # the centre's h extensions write the .meta files
    metas = [parse_meta(p.read_text(errors="replace"))
             for p in set(spool.glob(f"*{META_SUFFIX}")) - before]
    ok = [m for m in metas if m.get("status") == "SUCCESS" and m.get("pages") == str(pages)]
    bad = [r for r in results if r.get("Status") != "SUCCESS"]
    failed = max(len(bad), n - len(ok))
    why = sorted({f"{r.get('StatusStr', r.get('Status'))} ({r.get('Error', '')})" for r in bad}
                 | {f"centre: {m.get('statusstr')} ({m.get('error')})" for m in metas
                    if m not in ok})
    # the engine's conversion of each received TIFF to PDF, CPU of the tools it runs
    children0 = os.times()
    with tempfile.TemporaryDirectory() as tmp:
        for m in ok:
            tiff_to_pdf(spool / f"{m['id']}.tif", Path(tmp) / f"{m['id']}.pdf")
    children = os.times()
    convert = (children.children_user - children0.children_user
               + children.children_system - children0.children_system)
    received_pages = max(1, len(ok) * pages)
    return {"n": n, "ok": len(ok), "failed": failed, "wall_s": wall,
            "fax_per_min": len(ok) / wall * 60, "centre_cpu_s": cpu,
            "receive_ms_page": cpu / received_pages * 1000,
            "pdf_ms_page": convert / received_pages * 1000, "peer_cpu_s": peer_cpu,
            "rate": ",".join(sorted({m.get("rate", "") for m in ok})), "why": "; ".join(why)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,2,4,8,16,32,64,96,128,192,256",
                        help="concurrent receptions to try, in order; stops at a failure")
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--resolution", default="standard", choices=("standard", "fine"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="madoguchi-bench-fax-"))
    config, state = centre_config(work)
    _, tiff = make_document(work / "doc", args.pages, args.resolution)
    log = open(work / "centre.out", "wb")
    centre = subprocess.Popen(madoguchi_cmd(config, state, "pbx", "start"), cwd=ROOT,
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    peer = FaxPeer(work / "peer", PeerPorts(BASE + 90, BASE + 39, (BASE + 2000, BASE + 3199),
                                            (BASE + 3500, BASE + 3599)),
                   CentreTrunk(BASE + 60, "4000"), ROOTFS)
    rows = []
    try:
        centre_pid = find_asterisk(centre.pid)
        time.sleep(3)
        peer.start()
        assert peer.proc is not None
        peer_pid = find_asterisk(peer.proc.pid)
        spool = state / "asterisk" / "fax" / IN_DIR
        for n in (int(x) for x in args.levels.split(",")):
            row = run_level(peer, spool, tiff, n, args.pages, centre_pid, peer_pid)
            rows.append(row)
            print(f"  {n:>3} at once: {row['ok']} ok, {row['failed']} failed, "
                  f"{row['wall_s']:.0f} s {row['why']}", flush=True)
            if row["failed"]:
                break
    finally:
        peer.stop()
        centre.terminate()
        centre.wait(timeout=30)
        log.close()
    print(f"\nFAX receptions over G.711, {args.pages}-page {args.resolution} documents, "
          f"{os.cpu_count()} CPUs (both ends on this machine)")
    print(f"{'at once':>7} {'ok':>4} {'failed':>6} {'wall s':>7} {'FAX/min':>8} "
          f"{'centre CPU s':>12} {'receive ms/page':>15} {'PDF ms/page':>11} "
          f"{'peer CPU s':>10} {'bit/s':>11}")
    for r in rows:
        print(f"{r['n']:>7} {r['ok']:>4} {r['failed']:>6} {r['wall_s']:>7.1f} "
              f"{r['fax_per_min']:>8.1f} {r['centre_cpu_s']:>12.1f} "
              f"{r['receive_ms_page']:>15.0f} {r['pdf_ms_page']:>11.1f} "
              f"{r['peer_cpu_s']:>10.1f} {r['rate']:>11}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
