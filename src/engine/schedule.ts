/** Learning-rate schedules with linear warm-up, as transformers' get_*_schedule_with_warmup. */
export type LrScheduleName = 'linear' | 'cosine' | 'constant';

export interface LrSchedule {
  peakLr: number;
  warmupSteps: number;
  totalSteps: number;
  schedule: LrScheduleName;
}

/**
 * The learning rate for optimizer step `step` (0-based: the first update uses step 0).
 * Warm-up rises linearly from peakLr/warmupSteps; linear decays to 0 at totalSteps; cosine
 * follows half a cosine to 0, like transformers' schedules with num_cycles = 0.5.
 */
export function learningRateAt(step: number, schedule: LrSchedule): number {
  const { peakLr, warmupSteps, totalSteps } = schedule;
  if (step < warmupSteps) return (peakLr * (step + 1)) / warmupSteps;
  if (schedule.schedule === 'constant') return peakLr;
  const decaySteps = Math.max(1, totalSteps - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / decaySteps);
  if (schedule.schedule === 'linear') return peakLr * (1 - progress);
  return peakLr * 0.5 * (1 + Math.cos(Math.PI * progress));
}
