export { decide, isEligible, LOCAL } from './decide';
export { leastLoaded, leastLoadedAccounted, twoChoices, peerChoiceByName, peerChoiceNames, registerPeerChoice } from './peer-choice';
export type { CallInfo, Decision, PeerChoice, PeerEntry, PeerStatus, PolicyConfig, SelfState } from './types';
