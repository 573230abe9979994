import { describe, expect, it } from "vitest";
import { blastRadius } from "./live-counts.ts";

describe("blastRadius", () => {
  it("gives each issuer its own live certificates plus everything below it: a root's is its whole hierarchy", () => {
    const issuers = [
      { id: "root", parentId: null },
      { id: "old", parentId: "root" },
      { id: "new", parentId: "root" },
      { id: "delegated", parentId: "new" },
      { id: "other-root", parentId: "other-root" },
      { id: "orphan", parentId: "not-listed" },
    ];
    const counts = new Map([
      ["old", 3],
      ["new", 5],
      ["delegated", 2],
      ["orphan", 7],
      ["other-root", 1],
    ]);
    expect(Object.fromEntries(blastRadius(issuers, counts))).toEqual({ root: 10, old: 3, new: 7, delegated: 2, "other-root": 1, orphan: 7 });
  });

  it("stops on a parent loop instead of counting forever", () => {
    const radius = blastRadius(
      [
        { id: "a", parentId: "b" },
        { id: "b", parentId: "a" },
      ],
      new Map([["a", 1]]),
    );
    expect(Object.fromEntries(radius)).toEqual({ a: 1, b: 1 });
  });
});
