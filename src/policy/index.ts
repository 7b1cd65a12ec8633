export { decide, isEligible, LOCAL, redirectDetail } from './decide';
export { adviseSpread, type AdviceShare } from './advice';
export { leastLoaded, leastLoadedAccounted, twoChoices, peerChoiceByName, peerChoiceNames, registerPeerChoice } from './peer-choice';
export { compilePattern, isMethodPattern, type MethodPattern } from './method-pattern';
export { CompiledRules, DEFAULT_SESSION_IDLE_MS, type DedicatedRules, type SessionRole, type SessionRule } from './rules';
export type { CallInfo, Decision, PeerChoice, PeerEntry, PeerStatus, PolicyConfig, RejectReason, SelfState } from './types';
