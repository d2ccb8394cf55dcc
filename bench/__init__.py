"""Speed and capacity benchmarks, run as modules from the repository root:
`python -m bench.micro`, `python -m bench.load`, `python -m bench.login_burst`,
`python -m bench.recordings_search`."""
