#!/usr/bin/python3
"""flood-clients.py - the SMTP clients of make bench-flood, and its figures.

  flood-clients.py run --server HOST:PORT --tag TAG --out EVENTS [options]
      A bot flood and a steady stream of legitimate messages against one SMTP
      server, in three phases: WARM seconds of legitimate mail only, FLOOD
      seconds with the bots added, CALM seconds of legitimate mail only. Then
      it waits for the legitimate sessions still open (each is bounded by
      --legit-timeout) and exits. Every session is one JSON line in EVENTS;
      the first line holds the phases (epoch seconds).

      Bots: --bots concurrent clients, each a loop of sessions from a random
      address of --bot-net (--bot-addrs addresses, bound before connect) that
      behave like spam bots: a bare IP literal in HELO, a pause of
      --bot-delay MIN,MAX seconds before every command, unknown recipients
      (three tries), DATA left unfinished when a recipient is accepted, and a
      new connection soon after the server refuses or drops them.
      Legitimate senders: --legit-rate new sessions per second from
      --legit-addrs addresses of --legit-net, each one message with a proper
      EHLO name to --rcpt and a Message-ID "<TAG.SEQ@legit.test>". Outcome:
      accepted (the final 250), refused (a 5xx), deferred (a 4xx, or the
      session lost or timed out: a real MTA would try again later).

  flood-clients.py report --events EVENTS --sink DIR --tag TAG [options]
      One configuration's figures as a JSON line on stdout (and goodput per
      time bucket for the plot). The sink is smtp-sink's capture directory:
      every accepted legitimate message must be captured exactly once.

  flood-clients.py table --results RESULTS --plot-data DAT
      The table of every configuration's figures, and DAT, goodput over time
      (one block per configuration, for gnuplot).

The addresses are anywhere in 127.0.0.0/8 (Linux routes all of it to lo), so
no network outside the machine is ever touched.
"""
import argparse
import asyncio
import json
import math
import os
import random
import re
import sys
import time

# ---------------------------------------------------------------- clients


class SmtpError(Exception):
    pass


async def read_reply(reader, timeout):
    """The code and the text of one (possibly multi-line) reply; EOF raises."""
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionResetError("closed by the server")
        text = line.decode("latin-1").rstrip("\r\n")
        lines.append(text)
        if len(text) < 4 or text[3] != "-":
            try:
                return int(text[:3]), lines
            except ValueError:
                raise SmtpError("bad reply: " + text)


def addr_in(net, i):
    """Address number i (0-based) of a /16 given as "127.N"."""
    return "%s.%d.%d" % (net, 1 + i // 250, 1 + i % 250)


def banner_stress(lines):
    m = re.search(r"stress=(yes|no)", lines[-1]) if lines else None
    return m.group(1) if m else None


class Run:
    def __init__(self, a):
        self.a = a
        self.host, port = a.server.rsplit(":", 1)
        self.port = int(port)
        self.out = open(a.out, "w")
        self.t0 = time.time()
        self.flood_start = self.t0 + a.warm
        self.flood_end = self.flood_start + a.flood
        self.calm_end = self.flood_end + a.calm
        self.dmin, self.dmax = (float(x) for x in a.bot_delay.split(","))
        self.rng = random.Random(a.seed)
        self.write({"kind": "phases", "tag": a.tag, "start": self.t0,
                    "flood_start": self.flood_start, "flood_end": self.flood_end,
                    "calm_end": self.calm_end, "bots": a.bots, "legit_rate": a.legit_rate})

    def write(self, rec):
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()

    async def connect(self, src, timeout):
        return await asyncio.wait_for(asyncio.open_connection(
            self.host, self.port, local_addr=(src, 0)), timeout)

    async def legit(self, seq):
        a = self.a
        src = addr_in(a.legit_net, seq % a.legit_addrs)
        rec = {"kind": "legit", "seq": seq, "src": src, "t0": time.time(),
               "outcome": "deferred", "stage": "connect"}
        writer = None
        try:
            async with asyncio.timeout(a.legit_timeout):
                reader, writer = await self.connect(src, a.legit_timeout)
                code, lines = await read_reply(reader, a.legit_timeout)
                rec["t_banner"] = time.time()
                rec["stress"] = banner_stress(lines)
                steps = [
                    ("ehlo", "EHLO mail-%d.legit.test" % (seq % a.legit_addrs), 250),
                    ("mail", "MAIL FROM:<sender-%d@legit.test>" % seq, 250),
                    ("rcpt", "RCPT TO:<%s>" % a.rcpt, 250),
                    ("data", "DATA", 354),
                    ("eom", "From: <sender-%d@legit.test>\r\nTo: <%s>\r\n"
                     "Subject: flood %s %d\r\nMessage-ID: <%s.%d@legit.test>\r\n\r\n"
                     "A legitimate message sent during the flood benchmark.\r\n."
                     % (seq, a.rcpt, a.tag, seq, a.tag, seq), 250),
                ]
                stage, want = "connect", 220
                while True:
                    if code != want:
                        rec["outcome"] = "refused" if code >= 500 else "deferred"
                        rec["reply"] = lines[-1][:200]
                        break
                    if not steps:
                        rec["outcome"] = "accepted"
                        rec["t_end"] = time.time()
                        break
                    stage, cmd, want = steps.pop(0)
                    rec["stage"] = stage
                    writer.write((cmd + "\r\n").encode())
                    await writer.drain()
                    code, lines = await read_reply(reader, a.legit_timeout)
                if rec["outcome"] == "accepted":
                    writer.write(b"QUIT\r\n")
        except (TimeoutError, asyncio.TimeoutError):
            rec["reply"] = "timeout"
        except (OSError, SmtpError) as e:
            rec["reply"] = "lost: %s" % e
        finally:
            if writer is not None:
                writer.close()
        self.write(rec)

    async def bot_session(self):
        a, rng = self.a, self.rng
        src = addr_in(a.bot_net, rng.randrange(a.bot_addrs))
        rec = {"kind": "bot", "src": src, "t0": time.time(), "end": "refused", "stage": "connect"}
        writer = None
        try:
            reader, writer = await self.connect(src, 30)
            rec["t_conn"] = time.time()
            code, lines = await read_reply(reader, 120)
            rec["t_banner"] = time.time()
            rec["banner_code"] = code
            rec["stress"] = banner_stress(lines)
            if code != 220:
                rec["reply"] = lines[-1][:120]
                return rec
            cmds = [("helo", "HELO [%s]" % src), ("mail", "MAIL FROM:<%s@spam.test>" % src.replace(".", "-"))]
            cmds += [("rcpt", "RCPT TO:<nobody-%d@example.net>" % rng.randrange(10**6)) for _ in range(3)]
            accepted = False
            for stage, cmd in cmds:
                pause = rng.uniform(self.dmin, self.dmax)
                if time.time() + pause >= self.flood_end:
                    rec["end"] = "flood over"
                    return rec
                await asyncio.sleep(pause)
                rec["stage"] = stage
                writer.write((cmd + "\r\n").encode())
                await writer.drain()
                code, lines = await read_reply(reader, 120)
                rec["reply"] = lines[-1][:120]
                if stage == "rcpt" and code < 300:
                    accepted = True
                    break
                if code >= 400 and stage != "rcpt":
                    return rec
                if code in (421, 521):
                    return rec
            if not accepted:
                writer.write(b"QUIT\r\n")
                return rec
            # An accepted recipient: DATA, a few lines, then never the end.
            rec["stage"] = "data"
            writer.write(b"DATA\r\n")
            await writer.drain()
            code, lines = await read_reply(reader, 120)
            rec["reply"] = lines[-1][:120]
            if code != 354:
                return rec
            while time.time() < self.flood_end:
                writer.write(b"Subject: cheap pills\r\n")
                await writer.drain()
                try:  # anything from the server now ends the session
                    line = await asyncio.wait_for(reader.readline(), rng.uniform(self.dmin, self.dmax))
                    rec["reply"] = line.decode("latin-1").strip()[:120] or "closed"
                    return rec
                except (TimeoutError, asyncio.TimeoutError):
                    pass
            rec["end"] = "flood over"
            return rec
        except (TimeoutError, asyncio.TimeoutError):
            rec["reply"] = "timeout"
            rec["end"] = "timeout"
            return rec
        except (OSError, SmtpError) as e:
            rec["reply"] = "closed: %s" % e
            return rec
        finally:
            rec["t_close"] = time.time()
            if writer is not None:
                writer.close()

    async def bot(self):
        while time.time() < self.flood_end:
            try:
                rec = await asyncio.wait_for(self.bot_session(), max(0.1, self.flood_end - time.time() + 1))
            except (TimeoutError, asyncio.TimeoutError):
                continue
            self.write(rec)
            await asyncio.sleep(self.rng.uniform(0.2, 1.0))

    async def run(self):
        a = self.a
        tasks = []
        bots_started = False
        seq = 0
        while True:
            now = time.time()
            nxt = self.t0 + seq / a.legit_rate
            if nxt >= self.calm_end:
                break
            if not bots_started and self.flood_start <= min(nxt, now + 0.05) and a.bots > 0:
                await asyncio.sleep(max(0, self.flood_start - time.time()))
                tasks += [asyncio.create_task(self.bot()) for _ in range(a.bots)]
                bots_started = True
                continue
            await asyncio.sleep(max(0, nxt - now))
            tasks.append(asyncio.create_task(self.legit(seq)))
            seq += 1
        await asyncio.gather(*tasks)
        self.out.close()


def cmd_run(a):
    asyncio.run(Run(a).run())


# ---------------------------------------------------------------- figures


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))]


def sink_ids(sink, tag):
    """Message-ID sequence numbers of TAG captured by smtp-sink, with counts."""
    seen = {}
    pat = re.compile(r"^Message-ID: <%s\.(\d+)@legit\.test>" % re.escape(tag), re.I)
    for name in os.listdir(sink):
        if not name.startswith("msg."):
            continue
        try:
            with open(os.path.join(sink, name), encoding="latin-1") as f:
                for line in f:
                    m = pat.match(line)
                    if m:
                        seen[int(m.group(1))] = seen.get(int(m.group(1)), 0) + 1
                        break
        except OSError:
            pass
    return seen


def milter_log(path, regex):
    """(epoch, first group) of each line of the milter's time-stamped log
    ("EPOCH milter-stress[PID]: ...") that matches regex."""
    out = []
    if not path or not os.path.exists(path):
        return out
    pat = re.compile(r"^(\d+\.\d+) .*" + regex)
    with open(path, encoding="latin-1") as f:
        for line in f:
            m = pat.match(line)
            if m:
                out.append((float(m.group(1)), m.group(2)))
    return out


def onset_and_calm(samples, start, end):
    """samples: (epoch, stressed bool) in time order. Seconds from START to
    the first stressed sample, and from END to the first calm sample after
    which none is stressed (None: never stressed / still stressed at the end)."""
    on = next((t - start for t, s in samples if s and t >= start), None)
    calm = None
    if on is not None:
        last_yes = max((t for t, s in samples if s), default=None)
        after = [t for t, s in samples if not s and t > last_yes]
        if after:
            calm = max(0.0, min(after) - end)
    return on, calm


def cmd_report(a):
    events = [json.loads(line) for line in open(a.events)]
    ph = events[0]
    fs, fe, ce = ph["flood_start"], ph["flood_end"], ph["calm_end"]
    flood = fe - fs
    legit = [e for e in events if e["kind"] == "legit"]
    bots = [e for e in events if e["kind"] == "bot"]
    acc = [e for e in legit if e["outcome"] == "accepted"]
    in_flood = [e for e in acc if fs <= e["t_end"] < fe]
    lat = [e["t_end"] - e["t0"] for e in legit if e["outcome"] == "accepted" and fs <= e["t0"] < fe]
    started_flood = [e for e in legit if fs <= e["t0"] < fe]
    seen = sink_ids(a.sink, ph["tag"])
    acc_ids = {e["seq"] for e in acc}
    twice = sorted(s for s, n in seen.items() if n > 1)
    missing = sorted(acc_ids - set(seen))
    extra = sorted(set(seen) - acc_ids)  # delivered though the client saw no 250
    banners = sorted((e["t_banner"], e["stress"] == "yes") for e in legit + bots
                     if e.get("stress") is not None)
    pf_on, pf_calm = onset_and_calm(banners, fs, fe)
    # Its own load signal: "stress on: ..." / "stress off: ..." lines; and
    # the personality each logged session got ("stress=yes(macro)", ...).
    seen_by_milter = [(t, v == "yes") for t, v in milter_log(a.milter_log, r" stress=(yes|no)\(")]
    mm_on = next((t - fs for t, st in seen_by_milter if st and t >= fs), None)
    tr = milter_log(a.milter_log, r"\bstress (on|off)\b")
    ms_on, ms_calm = onset_and_calm([(t, s == "on") for t, s in tr], fs, fe) if tr else (None, None)

    def smtpd_held(e):
        if e.get("banner_code") != 220 or e.get("stress") is None:
            return 0.0  # refused or greeted by postscreen, or never greeted
        return max(0.0, e["t_close"] - e["t_banner"])

    deferred_why = {}
    for e in legit:
        if e["outcome"] == "deferred":
            why = "%s: %s" % (e["stage"], re.sub(r"\d{3,}", "N", e.get("reply", "?"))[:60])
            deferred_why[why] = deferred_why.get(why, 0) + 1
    bucket = a.bucket
    goodput = {b: 0 for b in range(math.floor((ph["start"] - fs) / bucket), math.ceil((ce - fs) / bucket))}
    for e in acc:
        b = int((e["t_end"] - fs) // bucket)
        goodput[b] = goodput.get(b, 0) + 1
    r = {
        "tag": ph["tag"], "label": a.label, "flood_s": round(flood, 1),
        "calm_window_s": round(ce - fe, 1), "bots": ph["bots"], "legit_rate": ph["legit_rate"],
        "legit_sent": len(legit), "legit_accepted": len(acc),
        "legit_deferred": sum(e["outcome"] == "deferred" for e in legit),
        "legit_refused": sum(e["outcome"] == "refused" for e in legit),
        "legit_flood_sent": len(started_flood),
        "legit_flood_mps": round(len(in_flood) / flood, 2) if flood > 0 else 0,
        "offered_mps": ph["legit_rate"],
        "p50_s": pct(lat, 50), "p99_s": pct(lat, 99),
        "delivered": sum(1 for s in acc_ids if seen.get(s) == 1),
        "delivered_twice": len(twice), "accepted_not_delivered": len(missing),
        "delivered_not_accepted": len(extra),
        "bot_sessions": len(bots),
        "bot_refused": sum(e["end"] == "refused" for e in bots),
        "bot_connected_s": round(sum(e["t_close"] - e["t0"] for e in bots), 1),
        "bot_smtpd_s": round(sum(smtpd_held(e) for e in bots), 1),
        "pf_stress_after_s": pf_on, "pf_calm_after_s": pf_calm,
        "ms_stress_after_s": ms_on, "ms_calm_after_s": ms_calm, "ms_transitions": len(tr),
        "stressed_banners": sum(1 for _, s in banners if s),
        "milter_sessions_logged": len(seen_by_milter),
        "milter_sessions_stressed": sum(1 for _, st in seen_by_milter if st),
        "milter_first_stressed_s": mm_on,
        "cpu_postfix_s": a.cpu_postfix, "cpu_milter_s": a.cpu_milter,
        "deferred_why": deferred_why,
        "goodput": [[b * bucket, n / bucket] for b, n in sorted(goodput.items())],
    }
    for k in ("p50_s", "p99_s", "pf_stress_after_s", "milter_first_stressed_s", "pf_calm_after_s", "ms_stress_after_s", "ms_calm_after_s"):
        if r[k] is not None:
            r[k] = round(r[k], 2)
    print(json.dumps(r))


def fmt(v, unit=""):
    return "-" if v is None else ("%s%s" % (v, unit))


def cmd_table(a):
    rows = [json.loads(line) for line in open(a.results) if line.strip()]
    cols = [
        ("config", lambda r: r["tag"]),
        ("legit/s flood", lambda r: "%.2f" % r["legit_flood_mps"]),
        ("p50 s", lambda r: fmt(r["p50_s"])),
        ("p99 s", lambda r: fmt(r["p99_s"])),
        ("legit sent", lambda r: str(r["legit_sent"])),
        ("deliv once", lambda r: str(r["delivered"])),
        ("deferred", lambda r: str(r["legit_deferred"])),
        ("refused", lambda r: str(r["legit_refused"])),
        ("bot sess", lambda r: str(r["bot_sessions"])),
        ("bot refused", lambda r: str(r["bot_refused"])),
        ("bot smtpd-s", lambda r: "%.0f" % r["bot_smtpd_s"]),
        ("stress after", lambda r: fmt(r["pf_stress_after_s"], "s")),
        ("calm after", lambda r: fmt(r["pf_calm_after_s"], "s") if r["pf_stress_after_s"] is not None
         and r["pf_calm_after_s"] is not None else (">%ss" % r["calm_window_s"] if r["pf_stress_after_s"] is not None else "-")),
        ("milter on/off", lambda r: "%s/%s" % (fmt(r["ms_stress_after_s"], "s"), fmt(r["ms_calm_after_s"], "s"))
         if r["ms_transitions"] else "-"),
        ("CPU pf s", lambda r: fmt(r["cpu_postfix_s"])),
        ("CPU milter s", lambda r: fmt(r["cpu_milter_s"])),
    ]
    cells = [[c[0] for c in cols]] + [[c[1](r) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    for n, row in enumerate(cells):
        print(" | ".join(v.rjust(widths[i]) if i else v.ljust(widths[i]) for i, v in enumerate(row)))
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    for r in rows:
        print("%s: %s" % (r["tag"], r["label"]))
        for why, n in sorted(r["deferred_why"].items(), key=lambda x: -x[1])[:4]:
            print("    deferred %d at %s" % (n, why))
        if r["milter_sessions_logged"]:
            print("    the milter logged %d sessions, %d of them stressed; the first stressed one %s s into the flood"
                  % (r["milter_sessions_logged"], r["milter_sessions_stressed"], fmt(r["milter_first_stressed_s"])))
        bad = [k for k in ("delivered_twice", "accepted_not_delivered", "delivered_not_accepted") if r[k]]
        for k in bad:
            print("    %s: %d" % (k.replace("_", " "), r[k]))
    with open(a.plot_data, "w") as f:
        for r in rows:
            f.write('"%s"\n' % r["tag"])
            for t, v in r["goodput"]:
                f.write("%g %g\n" % (t, v))
            f.write("\n\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--server", required=True)
    r.add_argument("--tag", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--warm", type=float, default=5)
    r.add_argument("--flood", type=float, default=60)
    r.add_argument("--calm", type=float, default=30)
    r.add_argument("--bots", type=int, default=150)
    r.add_argument("--bot-net", default="127.1")
    r.add_argument("--bot-addrs", type=int, default=2000)
    r.add_argument("--bot-delay", default="1,4")
    r.add_argument("--legit-rate", type=float, default=2)
    r.add_argument("--legit-net", default="127.2")
    r.add_argument("--legit-addrs", type=int, default=20)
    r.add_argument("--legit-timeout", type=float, default=60)
    r.add_argument("--rcpt", default="rcpt@example.net")
    r.add_argument("--seed", type=int, default=15)
    q = sub.add_parser("report")
    q.add_argument("--events", required=True)
    q.add_argument("--sink", required=True)
    q.add_argument("--label", default="")
    q.add_argument("--milter-log")
    q.add_argument("--cpu-postfix", type=float)
    q.add_argument("--cpu-milter", type=float)
    q.add_argument("--bucket", type=float, default=5)
    t = sub.add_parser("table")
    t.add_argument("--results", required=True)
    t.add_argument("--plot-data", required=True)
    a = p.parse_args()
    {"run": cmd_run, "report": cmd_report, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
