import type { Metadata, StatusObject } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { MD_ADVICE, parseAdvice } from '../wire';
import { RoutePlan } from './route-plan';

/**
 * Where a stub's calls start, by the nodes' advice (`peerbroker-advice`, in every redirect and
 * in the headers of a call that asked for it): at the origin until a node advises a spread,
 * then by the plan (route-plan.ts). While it holds a plan the stub says so (`peerbroker-follow:
 * 2`): nodes then move its calls only when they would queue, and the plan keeps the balance.
 * A stub has one service, so one plan. `FollowingCall` asks it once per call and tells it
 * what every attempt's node answered, redirects included: the one place routing is decided.
 */
export class AdvisedRouting {
  private readonly plan: RoutePlan;
  /** Counts the advices taken: one that waited for the member list is dropped if a newer one came meanwhile. */
  private taken = 0;

  constructor(
    origin: string,
    private readonly isMember: (endpoint: string) => boolean,
    /** Brings the member list up to date (throttled); an advice naming a node not yet known waits for it. */
    private readonly learnMembers: () => Promise<void> = () => Promise.resolve(),
  ) {
    this.plan = new RoutePlan(origin);
  }

  /** The endpoint of a call's first attempt. */
  firstEndpoint(now: number): string {
    return this.plan.next(now);
  }

  /** `peerbroker-follow` for a call: `2` while the stub spreads by advice, `1` otherwise. */
  follow(now: number): '1' | '2' {
    return this.plan.holds(now) ? '2' : '1';
  }

  /** True when this call should ask for a fresh advice (`peerbroker-advise-me: 1`). */
  wantsAdvice(now: number): boolean {
    return this.plan.wantsAdvice(now);
  }

  /** The response headers of the attempt a node accepted. */
  onHeaders(headers: Metadata): void {
    this.take(headers);
  }

  /**
   * The answer of one attempt, sent by `endpoint`; `reached`: the node accepted the call (its
   * headers came). A node that could not be reached gets no calls until an advice names it again.
   */
  onAnswer(endpoint: string, answer: StatusObject, reached: boolean): void {
    if (answer.code === status.UNAVAILABLE && !reached) this.plan.drop(endpoint);
    else if (answer.code === status.RESOURCE_EXHAUSTED) this.take(answer.metadata);
  }

  /** Where calls go now: endpoints and their shares (empty: all to the origin). */
  shares(): Record<string, number> {
    return this.plan.shares();
  }

  private take(md: Metadata): void {
    const v = md.get(MD_ADVICE);
    if (v.length === 0) return;
    const advice = parseAdvice(v[0]);
    if (!advice) return;
    const seq = ++this.taken;
    if (advice.shares.every((s) => this.isMember(s.endpoint))) return this.plan.apply(advice, performance.now(), this.isMember);
    // A node the stub does not know yet, typically while its first member list is still on the
    // way: taken without it, the first advice would send every call to the nodes known so far.
    void this.learnMembers().then(() => {
      if (seq === this.taken) this.plan.apply(advice, performance.now(), this.isMember);
    });
  }
}
