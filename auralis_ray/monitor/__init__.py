"""Observability for Auralis: metrics exported through Ray, process/GC sampling, memory leak
detection, alert rules. Each module holds one concept (benchmark records live in `auralis_ray.tools`):

* `metrics`     PerformanceMetrics, get_metrics, the metric definitions
* `process`     ProcessSampler: RSS, GPU memory, GC collection deltas, per actor
* `priority`    lower_priority: work ahead of the live edge yields the CPU (actors, load generator)
* `gc_config`   GCConfig, apply_gc_config, GCCollector, configure_gc, the ingress's
                ScheduledFullCollection and GCPauseTracker
* `memory`      MemorySnapshot, MemoryMonitor, MemoryMeasurement, MemoryGrowthTracker
* `alerts`      AlertSeverity, AlertRule, AlertConfig -> configs/prometheus/alerts.yml
* `grafana`     the dashboard -> configs/grafana/auralis.json
* `rate`        RateMeter (events per second over a window)
* `stats`       nearest-rank percentiles, least-squares line
"""
