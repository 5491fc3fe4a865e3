//! Prometheus metrics: request counts and latency per action, instances by state.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub action: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<ActionLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<ActionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(
                [
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]
                .into_iter(),
            )
        });
        registry.register(
            "strato_api_requests",
            "API requests by action and result code (OK for success)",
            requests.clone(),
        );
        registry.register(
            "strato_api_request_duration_seconds",
            "API request latency by action",
            latency.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
        }
    }

    /// Records one finished request.
    pub fn observe(&self, action: &str, code: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                action: action.to_string(),
                code: code.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&ActionLabels {
                action: action.to_string(),
            })
            .observe(seconds);
    }

    /// The text exposition, with the instance gauges appended (computed at scrape time
    /// from the store, so they can never drift from the truth).
    pub fn render(&self, instances_by_state: &[(String, i64)]) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        if let Some(stripped) = out.strip_suffix("# EOF\n") {
            out.truncate(stripped.len());
        }
        out.push_str(
            "# HELP strato_instances Instances by state.\n# TYPE strato_instances gauge\n",
        );
        for state in [
            "pending",
            "running",
            "shutting-down",
            "terminated",
            "stopping",
            "stopped",
        ] {
            let n = instances_by_state
                .iter()
                .find(|(s, _)| s == state)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            out.push_str(&format!("strato_instances{{state=\"{state}\"}} {n}\n"));
        }
        out.push_str("# EOF\n");
        out
    }
}
