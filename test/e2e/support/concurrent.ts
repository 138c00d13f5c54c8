// A group of concurrent e2e cases that still runs beside every other group of its file.
//
// jest-circus runs the concurrent tests of one describe block together, but the blocks one after another
// (jest-circus 30, run.ts `regroupConcurrentChildren`): a file whose cases sit in ten describe blocks waits for the
// slowest case of each block in turn, and its cases never use more than one block's worth of jest's maxConcurrency.
// Cases registered through a group stay in the block that is open where the group is made (the file's own, usually),
// all of them share maxConcurrency, and their titles still name the group.
import { it } from '@jest/globals';

type Body = () => Promise<unknown>;

export interface ConcurrentCases {
  (name: string, body: Body, timeoutMs?: number): void;
  /** As `it.concurrent.each`: one case per row, `%s` and friends in the name filled from the row. */
  each<Row extends readonly unknown[]>(
    rows: readonly Row[],
  ): (name: string, body: (...row: Row) => Promise<unknown>, timeoutMs?: number) => void;
}

export function concurrentCases(group: string): ConcurrentCases {
  const title = (name: string) => `${group} › ${name}`;
  const cases = (name: string, body: Body, timeoutMs?: number) => it.concurrent(title(name), body, timeoutMs);
  cases.each =
    <Row extends readonly unknown[]>(rows: readonly Row[]) =>
    (name: string, body: (...row: Row) => Promise<unknown>, timeoutMs?: number) =>
      it.concurrent.each(rows)(title(name), body, timeoutMs);
  return cases;
}
