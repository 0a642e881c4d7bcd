// Turns flat paths ("src/app.py", "src/lib/x.py") into a tree of folders and files, the way the
// file panel and the layer inspector show them: folders first, then files, each by name.

export interface TreeNode<T> {
  name: string;
  path: string;
  /** The item this node stands for; a folder only implied by its children's paths has none. */
  item: T | null;
  children: TreeNode<T>[];
}

export function buildTree<T extends { path: string }>(items: readonly T[]): TreeNode<T> {
  const root: TreeNode<T> = { name: "", path: "", item: null, children: [] };
  const folders = new Map<string, TreeNode<T>>([["", root]]);
  const folder = (path: string): TreeNode<T> => {
    const found = folders.get(path);
    if (found) return found;
    const cut = path.lastIndexOf("/");
    const node: TreeNode<T> = { name: path.slice(cut + 1), path, item: null, children: [] };
    folder(cut < 0 ? "" : path.slice(0, cut)).children.push(node);
    folders.set(path, node);
    return node;
  };
  for (const item of items) {
    const path = item.path.replace(/^\/+|\/+$/g, "");
    if (path === "") continue;
    const node = folder(path);
    node.item = item;
  }
  sortTree(root);
  return root;
}

function sortTree<T>(node: TreeNode<T>): void {
  node.children.sort((a, b) => {
    const aDir = a.children.length > 0 ? 0 : 1;
    const bDir = b.children.length > 0 ? 0 : 1;
    return aDir - bDir || a.name.localeCompare(b.name);
  });
  for (const child of node.children) sortTree(child);
}

/** Every path in the tree below `node`, depth first, in the order the tree shows them. */
export function flatten<T>(node: TreeNode<T>): TreeNode<T>[] {
  return node.children.flatMap((child) => [child, ...flatten(child)]);
}

/** The paths of the files (not folders) under the folder `prefix`, for moving or deleting it. */
export function filesUnder(paths: readonly string[], prefix: string): string[] {
  return paths.filter((p) => p.startsWith(prefix + "/"));
}
