"""Helpers shared by the benchmarks: reading the machine's CPU pressure beside the figures."""


def cpu_pressure():
    """The "some" line of /proc/pressure/cpu (how loaded the machine is), or "n/a"."""
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().strip()
    except OSError:
        return "n/a"
