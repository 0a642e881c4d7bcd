import { describe, expect, it } from "vitest";
import { buildTree, filesUnder, flatten } from "./tree";

describe("buildTree", () => {
  it("nests files under their folders, folders first, then by name", () => {
    const tree = buildTree([{ path: "b.txt" }, { path: "src/z.py" }, { path: "Dockerfile" }, { path: "src/lib/a.py" }]);
    expect(flatten(tree).map((n) => n.path)).toEqual(["src", "src/lib", "src/lib/a.py", "src/z.py", "b.txt", "Dockerfile"]);
  });

  it("keeps the item on the node it names, and none on folders only implied by paths", () => {
    const tree = buildTree([{ path: "app/main.py", size: 3 }]);
    const app = tree.children[0]!;
    expect(app.item).toBeNull();
    expect(app.children[0]?.item).toEqual({ path: "app/main.py", size: 3 });
  });

  it("takes an explicit folder entry as the folder's own item", () => {
    const tree = buildTree([{ path: "/app/", kind: "dir" }, { path: "/app/x", kind: "file" }]);
    expect(tree.children).toHaveLength(1);
    expect(tree.children[0]?.item?.kind).toBe("dir");
    expect(tree.children[0]?.children[0]?.name).toBe("x");
  });
});

describe("filesUnder", () => {
  it("lists only the files inside the folder, not ones sharing its name's prefix", () => {
    expect(filesUnder(["src/a", "src/b/c", "srcs/d", "src"], "src")).toEqual(["src/a", "src/b/c"]);
  });
});
