"""Linux /proc readings for the benchmark: a server's processes (by session id),
their CPU time, RSS, threads and context switches, and the CPU used by
everything else on the machine (to detect a run disturbed by other work)."""
import os
import shlex
import signal
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PF_KTHREAD = 0x00200000


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (index 0 = state)."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()


def session_pids(sid):
    """Live processes in session `sid` (a server started with start_new_session)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fl = _stat_fields(d)
        except (OSError, ValueError):
            continue
        if fl[0] != "Z" and int(fl[3]) == sid:
            out.append(int(d))
    return out


def cpu_seconds(sid):
    """utime+stime (+ reaped children) over the session, in seconds."""
    ticks = 0
    for pid in session_pids(sid):
        try:
            ticks += sum(int(x) for x in _stat_fields(pid)[11:15])
        except (OSError, ValueError):
            pass
    return ticks / CLK_TCK


def status_kib(sid, key):
    """Sum of a /proc/PID/status KiB field (VmRSS, VmHWM) over the session."""
    total = 0
    for pid in session_pids(sid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def context_switches(sid):
    """{'total': n, 'threads': {'pid/tid comm': n}}: voluntary + nonvoluntary
    context switches of every thread of every process in the session."""
    threads = {}
    for pid in session_pids(sid):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            n = 0
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                            n += int(line.split()[1])
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            threads[f"{pid}/{tid} {comm}"] = n
    return {"total": sum(threads.values()), "threads": threads}


def thread_count(sid):
    n = 0
    for pid in session_pids(sid):
        try:
            n += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return n


def snapshot():
    """(time, {pid: (sid, ppid, kernel_thread, utime+stime, start_time)}) of every process.
    Reaped children's time (cutime) is left out: it lands on the parent all at once
    when the child exits, so it would count work done before the window."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fl = _stat_fields(d)
            out[int(d)] = (int(fl[3]), int(fl[1]), bool(int(fl[6]) & PF_KTHREAD),
                           sum(int(x) for x in fl[11:13]), int(fl[19]))
        except (OSError, ValueError, IndexError):
            continue
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0]) * CLK_TCK
    return up, out


def foreign_cpu_pct(before, after, exclude_sids, wall_s):
    """% of one core used between two snapshots by user-space processes other
    than this script, its children (h2load) and the excluded sessions."""
    me = os.getpid()
    t0, b = before
    _, a = after
    ticks = 0
    for pid, (sid, ppid, kthread, t, start) in a.items():
        if kthread or sid in exclude_sids or pid == me or ppid == me:
            continue
        if pid in b and b[pid][4] == start:
            ticks += max(t - b[pid][3], 0)
        elif start >= t0 - 1:
            ticks += t  # started during the window
    return 100.0 * ticks / CLK_TCK / max(wall_s, 1e-6)


def wait_quiet(exclude_sids, pct=5.0, secs=3, timeout=120.0):
    """Waits until other processes use < pct % of a core for `secs` consecutive
    seconds, at most `timeout` s. Returns (waited_s, last_pct, reached)."""
    t0 = time.monotonic()
    streak, last = 0, 0.0
    while True:
        a = snapshot()
        time.sleep(1.0)
        b = snapshot()
        last = foreign_cpu_pct(a, b, exclude_sids, 1.0)
        streak = streak + 1 if last < pct else 0
        if streak >= secs:
            return time.monotonic() - t0, last, True
        if time.monotonic() - t0 > timeout:
            return time.monotonic() - t0, last, False


class Server:
    """A server command pinned to one core (unless core is None), in its own session so that all of
    its processes and threads can be found, measured and stopped together."""

    def __init__(self, name, cmd, port, core, logdir, nice=0):
        self.name, self.port = name, port
        self.cmd = cmd.replace("PORT", str(port))
        self.log_path = os.path.join(logdir, f"{name}.{port}.log")
        self.logf = open(self.log_path, "wb")
        env = dict(os.environ, PORT=str(port))
        self.started = time.monotonic()
        # Exec'd directly (no shell, no taskset process) so that start-up time is the
        # server's own; the CPU affinity is set in the child before exec.
        def prepare():
            if core is not None:
                os.sched_setaffinity(0, {int(core)})
            if nice:
                os.setpriority(os.PRIO_PROCESS, 0, nice)

        self.p = subprocess.Popen(shlex.split(self.cmd), preexec_fn=prepare,
                                  stdout=self.logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.sid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.alive():
            try:
                os.killpg(self.sid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.sid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(timeout=5)
        for pid in session_pids(self.sid):  # stragglers of this server's own session
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.logf.close()
