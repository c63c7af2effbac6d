"""Development tools for Auralis, outside the serving path: nothing the server runs imports them.

Installed with the `tools` extra (`pip install 'auralis-ray[tools]'`); `auralis loadtest` and
`auralis soak` run them from the command line.

* `loadtest`      the load generator (many listeners, their report) and a bare `websockets` baseline
* `soak`          hours of audio through the station pipeline, reporting the memory slope
* `benchmark`     PerformanceBenchmark, BenchmarkRun: one JSON record per benchmark run
* `export_probe`  proves that Ray exports every Auralis metric
"""
