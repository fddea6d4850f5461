"""What a person sees in the terminal: the live view of a run (``run_state`` follows the
tasks, fed by ``poller`` with the run's timings, ``phases`` says what each phase did and
``history`` what earlier runs took; ``view`` draws them, ``run_log`` keeps the run's log
and finds its errors) and the summary ``reco run`` prints at the end (``summary``)."""
