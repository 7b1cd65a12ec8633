import { controlPlane } from './control-plane';
import { http } from './http';
import { outage } from './outage';
import { overhead } from './overhead';
import { payload } from './payload';
import { redirect } from './redirect';
import { saturation } from './saturation';
import { skew } from './skew';
import { stale } from './stale';
import type { Scenario } from './types';

/** Every scenario, in the order they run and are reported. */
export const SCENARIOS: Scenario[] = [overhead, redirect, skew, stale, controlPlane, payload, outage, saturation, http];
