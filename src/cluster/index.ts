export { PeerView, type PeerRecord, type PeerViewOptions } from './peer-view';
export { NatsExchange, type NatsExchangeOptions } from './nats-exchange';
export { InProcessBus } from './in-process-exchange';
export { loadSubject, type Exchange, type ExchangeStatus } from './exchange';
export { encodeReport, decodeReport, isRejected, isValidNodeId, MAX_REPORT_BYTES, type LoadReport, type DropReason } from './report-codec';
export { eventLoopMeter, loadMeterByName, loadMeterNames, registerLoadMeter, LoopDelay, type LoadMeter } from './load-meter';
export { ClusterKey } from './cluster-key';
export { openReport, sealReport } from './report-signing';
export { natsConnectionOptions, type NatsAuthOptions } from './nats-auth';
