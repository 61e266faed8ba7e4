import t from 'tap';
import { Fault } from '../../core/fault.ts';
import { defaultMetrics, LocalHistogram, Metrics } from '../../core/metrics.ts';

t.test('accepts names of the form keygate_<area>_<name>_<unit>', async (t) => {
  const metrics = new Metrics();
  t.ok(metrics.counter('keygate_cache_reads_total', 'reads', ['cache']));
  t.ok(metrics.gauge('keygate_cache_entries_count', 'entries'));
  t.ok(metrics.histogram('keygate_http_request_latency_seconds', 'latency', ['method']));
  t.ok(metrics.histogram('keygate_proxy_upstream_connect_ms', 'connect time'));
  t.ok(metrics.gauge('keygate_build_version_info', 'build', ['version']));
  t.ok(metrics.gauge('keygate_ratelimit_window_fill_ratio', 'fill'));
  t.ok(metrics.histogram('keygate_http_request_body_bytes', 'body size'));
});

t.test('rejects a bad name with a fault that names the metric', async (t) => {
  const metrics = new Metrics();
  const cases: Array<[kind: 'counter' | 'gauge' | 'histogram', name: string, why: RegExp]> = [
    ['counter', 'cache_reads_total', /keygate_<area>_<name>_<unit>/],
    ['counter', 'keygate_reads_total', /keygate_<area>_<name>_<unit>/],
    ['counter', 'keygate_cache_reads', /keygate_<area>_<name>_<unit>/],
    ['counter', 'keygate_Cache_reads_total', /keygate_<area>_<name>_<unit>/],
    ['counter', 'keygate_cache_reads-x_total', /keygate_<area>_<name>_<unit>/],
    ['gauge', 'keygate_cache_entries_things', /keygate_<area>_<name>_<unit>/],
    ['counter', 'keygate_cache_hit_ratio', /must end with _total/],
    ['gauge', 'keygate_cache_reads_total', /must not end with _total/],
    ['histogram', 'keygate_http_requests_total', /must not end with _total/],
  ];
  for (const [kind, name, why] of cases) {
    let caught: unknown;
    try {
      metrics[kind](name, 'help');
    } catch (err) {
      caught = err;
    }
    t.ok(caught instanceof Fault, `${kind} ${name} throws a Fault`);
    const fault = caught as Fault;
    t.equal(fault.code, 'err:keygate:metrics:invalid_definition', `${name} code`);
    t.ok(fault.message.includes(name), `${name}: message names the metric: ${fault.message}`);
    t.match(fault.message, why, `${name}: says why`);
  }
  t.equal((await metrics.render()).trim(), '', 'nothing was registered');
});

t.test('registering the same metric twice returns the same instance', async (t) => {
  const metrics = new Metrics();
  const first = metrics.counter('keygate_cache_loads_total', 'loads', ['cache']);
  const second = metrics.counter('keygate_cache_loads_total', 'loads again', ['cache']);
  t.equal(first, second);
  first.inc({ cache: 'a' });
  second.inc({ cache: 'a' }, 2);
  t.match(await metrics.render(), /keygate_cache_loads_total\{cache="a"\} 3/);
  const histogram = metrics.histogram('keygate_http_latency_seconds', 'latency', [], [0.1, 1]);
  t.equal(metrics.histogram('keygate_http_latency_seconds', 'latency'), histogram, 'omitting buckets accepts the existing ones');
  t.equal(metrics.histogram('keygate_http_latency_seconds', 'latency', [], [0.1, 1]), histogram, 'same buckets');
});

t.test('a conflicting re-registration throws instead of returning a mismatched metric', async (t) => {
  const metrics = new Metrics();
  metrics.counter('keygate_cache_loads_total', 'loads', ['cache']);
  t.throws(() => metrics.counter('keygate_cache_loads_total', 'loads', ['cache', 'result']), { code: 'err:keygate:metrics:invalid_definition', message: /labels \[cache\], not \[cache, result\]/ });
  metrics.gauge('keygate_cache_size_bytes', 'size');
  t.throws(() => metrics.histogram('keygate_cache_size_bytes', 'size'), { message: /already registered as a gauge, not a histogram/ });
  metrics.histogram('keygate_http_latency_seconds', 'latency');
  t.throws(() => metrics.histogram('keygate_http_latency_seconds', 'latency', [], [1, 2]), { message: /different buckets/ });
});

t.test('bad label names surface as the same fault, naming the metric', async (t) => {
  const metrics = new Metrics();
  t.throws(() => metrics.counter('keygate_cache_reads_total', 'reads', ['bad-label']), { code: 'err:keygate:metrics:invalid_definition', message: /keygate_cache_reads_total/ });
});

t.test('render produces the Prometheus text format with help, type and unit-based buckets', async (t) => {
  const metrics = new Metrics();
  metrics.gauge('keygate_cache_entries_count', 'Entries held.', ['cache']).set({ cache: 'keys' }, 7);
  metrics.histogram('keygate_http_request_latency_seconds', 'Latency.').observe(0.003);
  metrics.histogram('keygate_http_request_latency_ms', 'Latency in ms.').observe(3);
  const text = await metrics.render();
  t.match(text, /# HELP keygate_cache_entries_count Entries held\./);
  t.match(text, /# TYPE keygate_cache_entries_count gauge/);
  t.match(text, /keygate_cache_entries_count\{cache="keys"\} 7/);
  t.match(text, /keygate_http_request_latency_seconds_bucket\{le="0.0025"\} 0/);
  t.match(text, /keygate_http_request_latency_seconds_bucket\{le="0.005"\} 1/);
  t.match(text, /keygate_http_request_latency_ms_bucket\{le="2.5"\} 0/);
  t.match(text, /keygate_http_request_latency_ms_bucket\{le="5"\} 1/);
  t.match(metrics.contentType, /^text\/plain/);
});

t.test('each Metrics has its own registry; the default one exists', async (t) => {
  const one = new Metrics();
  const two = new Metrics();
  one.counter('keygate_test_things_total', 'things').inc();
  t.match(await one.render(), /keygate_test_things_total 1/);
  t.notMatch(await two.render(), /keygate_test_things_total/);
  t.ok(defaultMetrics instanceof Metrics);
});

t.test('onCollect hooks publish hot-path counts when scraped, and can be removed', async (t) => {
  const metrics = new Metrics();
  const counter = metrics.counter('keygate_test_events_total', 'events', ['kind']);
  let pending = 0;
  const remove = metrics.onCollect('keygate_test_events_total', () => {
    if (pending > 0) counter.inc({ kind: 'a' }, pending);
    pending = 0;
  });
  pending = 5;
  t.match(await metrics.render(), /keygate_test_events_total\{kind="a"\} 5/);
  pending = 2;
  t.match(await metrics.registry.metrics(), /keygate_test_events_total\{kind="a"\} 7/, 'also runs on a direct registry read');
  remove();
  pending = 100;
  t.match(await metrics.render(), /keygate_test_events_total\{kind="a"\} 7/, 'a removed hook no longer runs');
  t.throws(() => metrics.onCollect('keygate_test_unknown_total', () => {}), { code: 'err:keygate:metrics:invalid_definition', message: /keygate_test_unknown_total/ });
});

t.test('a local histogram renders exactly what a prom-client histogram renders for the same observations', async (t) => {
  const local = new Metrics();
  const reference = new Metrics();
  const series = local.localHistogram('keygate_http_request_duration_seconds', 'latency', ['method', 'status']);
  const histogram = reference.histogram('keygate_http_request_duration_seconds', 'latency', ['method', 'status']);
  const observations: Array<[string, string, number]> = [['GET', '200', 0.0003], ['GET', '200', 0.001], ['GET', '200', 0.0011], ['POST', '500', 12], ['POST', '500', 0.25], ['GET', '200', Number.NaN]];
  for (const [method, status, value] of observations) {
    series.labels(method, status).observe(value);
    if (Number.isFinite(value)) histogram.labels(method, status).observe(value);
  }
  t.same(normalized(await local.render()), normalized(await reference.render()), 'same buckets (cumulative, le="+Inf"), sum and count; a NaN is ignored');
});

/** The exposition's lines with each line's labels sorted (prom-client's label order varies), sorted. */
function normalized(text: string): string[] {
  return text.trim().split('\n').map((line) => line.replace(/\{([^}]*)\}/, (_all, labels: string) => `{${labels.split(',').sort().join(',')}}`)).sort();
}

t.test('a local histogram is registered once per name and conflicts are faults', async (t) => {
  const metrics = new Metrics();
  const first = metrics.localHistogram('keygate_http_request_duration_seconds', 'latency', ['route']);
  t.equal(metrics.localHistogram('keygate_http_request_duration_seconds', 'latency', ['route']), first, 'the same instance');
  t.throws(() => metrics.histogram('keygate_http_request_duration_seconds', 'latency', ['route']), { code: 'err:keygate:metrics:invalid_definition' });
  t.throws(() => metrics.localHistogram('keygate_http_request_duration_seconds', 'latency', ['method']), { code: 'err:keygate:metrics:invalid_definition' });
  t.throws(() => metrics.localHistogram('keygate_http_other_latency_seconds', 'x', ['le']), { code: 'err:keygate:metrics:invalid_definition' }, 'le is reserved for buckets');
  t.throws(() => metrics.localHistogram('keygate_http_other_latency_seconds', 'x', ['bad-name']), { code: 'err:keygate:metrics:invalid_definition' });
  t.throws(() => first.labels('a', 'b'), { code: 'err:keygate:metrics:invalid_definition' }, 'wrong number of label values');
});

t.test('a local histogram holds a bounded number of label sets; the rest share one "other" series', async (t) => {
  const metrics = new Metrics();
  const histogram = metrics.localHistogram('keygate_http_request_duration_seconds', 'latency', ['route']);
  for (let index = 0; index < LocalHistogram.MAX_SERIES + 50; index++) histogram.labels(`/r${index}`).observe(0.001);
  const rendered = await metrics.render();
  t.match(rendered, 'keygate_http_request_duration_seconds_count{route="other"} 50');
  t.notMatch(rendered, `route="/r${LocalHistogram.MAX_SERIES}"`);
});
