"""Scheduling: how a TE program's loops are split, ordered, placed and annotated."""
from .schedule import Schedule, create_schedule
from .stage import ScheduleError, Stage
from .trace import dumps, loads, replay
