"""Prometheus metrics. One registry per engine so tests can run several engines side by side.
Labels stay small (service, queue, state): never a per-call label."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # the KPIs' names and definitions: offered = reached the waiting line (the answer
        # rate's denominator); received = reached the IVR (self-service and closed included)
        self.calls_received = Counter("madoguchi_calls_received",
                                      "Calls that reached the IVR", ["service"], registry=r)
        self.calls_offered = Counter("madoguchi_calls_offered",
                                     "Calls offered to an operator (reached the waiting line)",
                                     ["service"], registry=r)
        self.calls_answered = Counter("madoguchi_calls_answered",
                                      "Calls answered by an operator", ["service"], registry=r)
        self.calls_ended = Counter("madoguchi_calls_ended", "Calls ended, by outcome",
                                   ["service", "outcome"], registry=r)
        # 9 s is the quick-answer threshold (REQUIREMENTS §9); see Call.time_to_answer
        self.time_to_answer = Histogram(
            "madoguchi_time_to_answer_seconds", "Waiting line to operator answer",
            ["service"], buckets=(1, 3, 6, 9, 15, 30, 60, 120, 300), registry=r)
        self.ami_connected = Gauge("madoguchi_ami_connected", "1 while logged in to AMI",
                                   registry=r)
        self.ami_reconnects = Counter("madoguchi_ami_reconnects",
                                      "AMI connections made after the first", registry=r)
        self.fastagi_listening = Gauge("madoguchi_fastagi_listening",
                                       "1 while the FastAGI server accepts connections",
                                       registry=r)
        self.waiting = Gauge("madoguchi_queue_waiting", "Callers waiting", ["queue"], registry=r)
        self.agents = Gauge("madoguchi_agents", "Operators by state", ["state"], registry=r)
        self.recordings_indexed = Counter("madoguchi_recordings_indexed",
                                          "Recordings written to the index", registry=r)
        self.recordings_failed = Counter("madoguchi_recordings_failed",
                                         "Calls whose recording file was missing or incomplete",
                                         registry=r)
        # service levels (kpi/): abandons, longest wait, IVR node hits, index lag
        self.calls_abandoned = Counter("madoguchi_calls_abandoned",
                                       "Callers who hung up while waiting or ringing",
                                       ["service"], registry=r)
        self.longest_wait = Gauge("madoguchi_queue_longest_wait_seconds",
                                  "Wait of the caller waiting longest", ["queue"], registry=r)
        # node ids come from the validated flow set, so the label set stays bounded
        self.ivr_node_hits = Counter("madoguchi_ivr_node_hits", "Calls that passed an IVR node",
                                     ["service", "node"], registry=r)
        self.recording_index_lag = Gauge("madoguchi_recording_index_lag_seconds",
                                         "Call end to recording indexed, last call", registry=r)
        self.board_played = Counter("madoguchi_event_board_played",
                                    "Event-board announcements started for waiting callers",
                                    ["language"], registry=r)
        # the post-call survey: score over a range = increase(points) / increase(answers)
        self.survey_answers = Counter("madoguchi_survey_answers",
                                      "Post-call survey questions answered, by key (1-5)",
                                      ["service", "answer"], registry=r)
        self.survey_points = Counter("madoguchi_survey_points",
                                     "Points (of 100) of the post-call survey's answers",
                                     ["service"], registry=r)
        # callbacks by the state they reached: pending (booked or back for a retry),
        # dialing, done, failed, expired
        self.callbacks = Counter("madoguchi_callbacks",
                                 "Callback state changes, by the state reached",
                                 ["service", "state"], registry=r)
