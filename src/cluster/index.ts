// The cluster part's door: what the broker, the CLI and the library's users may use.
export { DEFAULT_MAX_PEERS, PeerView, type PeerRecord, type PeerViewOptions } from './peer-view';
export { NatsExchange, type NatsExchangeOptions } from './nats-exchange';
export { InProcessBus } from './in-process-exchange';
export { loadSubject, type Exchange, type ExchangeStatus } from './exchange';
export { encodeReport, decodeReport, isRejected, isValidNodeId, MAX_PERIOD_MS, MIN_PERIOD_MS, MAX_REPORT_BYTES, MAX_REPORT_ENDPOINTS, MAX_REPORT_REDIRECTS, type LoadReport, type DropReason, type RedirectCount } from './report-codec';
export { readClock, type ReportBatch } from './report-filter';
export { eventLoopMeter, loadMeterByName, loadMeterNames, registerLoadMeter, LoopDelay, type LoadMeter } from './load-meter';
export { LoadCounters, type NodeStatusName } from './load-counters';
export { HEARTBEAT_MS, type NodeInfo } from './report-builder';
export { FORGET_AFTER_MS, LocalControlPlane, MAX_CLOCK_SKEW_MS, type ControlPlane, type ControlPlaneHandlers } from './control-plane';
export { WorkerControlPlane } from './worker-control-plane';
export { rendezvousRanking, rendezvousWinner } from './rendezvous';
export {
  ConfigRejectedError,
  configSubject,
  newConfigMessage,
  publishConfig,
  readCurrentConfig,
  type ConfigDropReason,
  type ConfigMessage,
} from './runtime-config';
export { ClusterKey } from './cluster-key';
export { openReport, sealReport } from './report-signing';
export { describeNatsAuth, natsAuthSchema, natsConnectionOptions, permissionViolation, redactUrl, type NatsAuthOptions } from './nats-auth';
