import type { Metadata, StatusObject } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { MD_ADVICE, MD_ADVISE_ME, MD_FOLLOW, parseAdvice } from '../wire';
import { RoutePlan } from './route-plan';

/**
 * Where a call's first attempt goes, and what each answer teaches: the one place the stub's
 * routing is decided. Every attempt of every call kind goes through `FollowingCall`, which
 * asks `firstEndpoint` and `outgoing` once per call and tells `onHeaders` and `onAnswer`
 * what every attempt's node answered, redirects included.
 */
export interface Routing {
  /** The endpoint of the first attempt of a call of `path` (`/pkg.Service/Method`). */
  firstEndpoint(path: string, now: number): string;
  /** Marks the outgoing metadata of a call (the stub's own copy) as routing needs. */
  outgoing(path: string, md: Metadata, now: number): void;
  /** The response headers of the attempt a node accepted. */
  onHeaders(path: string, endpoint: string, headers: Metadata): void;
  /** The answer (status, details, trailers) of one attempt of a call of `path`, sent by `endpoint`. */
  onAnswer(path: string, endpoint: string, answer: StatusObject): void;
  /** Where calls go now: endpoints and their shares (empty: all to the origin). */
  shares(): Record<string, number>;
}

/**
 * Routing by the nodes' advice (`peerbroker-advice`, in every redirect and in the headers of
 * a call that asked for it): calls start at the origin until a node advises a spread, then go
 * out by the plan (route-plan.ts). While it holds a plan the stub says so (`peerbroker-follow:
 * 2`): nodes then move its calls only when they would queue, and the plan keeps the balance.
 * A stub has one service, so one plan.
 */
export class AdvisedRouting implements Routing {
  private readonly plan: RoutePlan;

  constructor(
    origin: string,
    private readonly isMember: (endpoint: string) => boolean,
  ) {
    this.plan = new RoutePlan(origin);
  }

  firstEndpoint(_path: string, now: number): string {
    return this.plan.next(now);
  }

  outgoing(_path: string, md: Metadata, now: number): void {
    if (this.plan.holds(now)) md.set(MD_FOLLOW, '2');
    if (this.plan.wantsAdvice(now)) md.set(MD_ADVISE_ME, '1');
  }

  onHeaders(_path: string, _endpoint: string, headers: Metadata): void {
    this.take(headers);
  }

  onAnswer(_path: string, endpoint: string, answer: StatusObject): void {
    if (answer.code === status.UNAVAILABLE) this.plan.drop(endpoint);
    else if (answer.code === status.RESOURCE_EXHAUSTED) this.take(answer.metadata);
  }

  shares(): Record<string, number> {
    return this.plan.shares();
  }

  private take(md: Metadata): void {
    const v = md.get(MD_ADVICE);
    if (v.length === 0) return;
    const advice = parseAdvice(v[0]);
    if (advice) this.plan.apply(advice, performance.now(), this.isMember);
  }
}
