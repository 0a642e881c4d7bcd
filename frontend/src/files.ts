// The project's files as a tree beside the editor: open one, make a new one, rename or move a
// file or folder, delete, upload a folder or an archive. Every change goes to the API first and
// the tree is redrawn from what the server answered, so it never shows a file that is not saved.
import { Api, ApiError, filePath, type Answer, type RequestBody } from "./api";
import { el, formatBytes, plural } from "./format";
import { buildTree, filesUnder, type TreeNode } from "./tree";

export interface FileInfo {
  path: string;
  size: number;
  sha256?: string;
  mode?: number;
}

export interface FilePanelHooks {
  open: (path: string) => void;
  /** A file moved (`to` set) or went away (`to` null): tabs and pending saves follow it. */
  moved: (from: string, to: string | null) => void;
  /** Files were added or replaced from outside the editor (an upload): reload open tabs. */
  replaced: (paths: string[]) => void;
  message: (text: string, isError?: boolean) => void;
}

export class FilePanel {
  private files: FileInfo[] = [];
  private readonly list: HTMLElement;
  active = "";

  constructor(
    private readonly root: HTMLElement,
    private readonly api: Api,
    private readonly projectId: string,
    private readonly canEdit: boolean,
    private readonly hooks: FilePanelHooks,
  ) {
    this.list = el("ul", "file-tree");
    this.list.setAttribute("role", "tree");
    this.list.setAttribute("aria-label", "Files of the build context");
    const bar = el("div", "file-actions");
    if (canEdit) {
      const newFile = button("New file", "+ File", () => this.newFile());
      const folderInput = fileInput(true);
      const archiveInput = fileInput(false, ".tar,.tar.gz,.tgz,.tar.bz2,.tar.xz,.zip");
      folderInput.addEventListener("change", () => void this.uploadFolder(folderInput));
      archiveInput.addEventListener("change", () => void this.uploadArchive(archiveInput));
      const folder = button("Upload a folder", "Folder…", () => folderInput.click());
      const archive = button("Upload a tar or zip archive", "Archive…", () => archiveInput.click());
      bar.append(newFile, folder, archive, folderInput, archiveInput);
    }
    root.replaceChildren(el("h2", "panel-title", "Files"), bar, this.list);
  }

  paths(): string[] {
    return this.files.map((f) => f.path);
  }

  setFiles(files: FileInfo[]): void {
    this.files = [...files];
    this.render();
  }

  upsert(info: FileInfo): void {
    this.files = [...this.files.filter((f) => f.path !== info.path), info];
    this.render();
  }

  render(): void {
    const tree = buildTree(this.files);
    this.list.replaceChildren(...tree.children.map((n) => this.node(n, 1)));
  }

  private node(node: TreeNode<FileInfo>, depth: number): HTMLElement {
    const li = el("li", node.item ? "file" : "folder");
    li.setAttribute("role", "treeitem");
    li.setAttribute("aria-level", String(depth));
    li.dataset["path"] = node.path;
    const row = el("div", "file-row");
    if (node.item) {
      const open = el("button", "file-open", node.name);
      open.type = "button";
      open.title = `${node.path} · ${formatBytes(node.item.size)}`;
      if (node.path === this.active) open.setAttribute("aria-current", "true");
      open.addEventListener("click", () => this.hooks.open(node.path));
      row.append(open, el("span", "file-size", formatBytes(node.item.size)));
    } else {
      li.setAttribute("aria-expanded", "true");
      row.append(el("span", "folder-name", `${node.name}/`));
    }
    if (this.canEdit) {
      row.append(
        button(`Rename ${node.path}`, "✎", () => this.rename(li, row, node)),
        button(`Delete ${node.path}`, "✕", () => void this.remove(node)),
      );
    }
    li.append(row);
    if (node.children.length > 0) {
      const group = el("ul");
      group.setAttribute("role", "group");
      group.append(...node.children.map((c) => this.node(c, depth + 1)));
      li.append(group);
    }
    return li;
  }

  /** An inline text box in place of a row; resolves with the typed name, or null on Escape. */
  private ask(row: HTMLElement, label: string, value: string, commit: (text: string) => Promise<void>): void {
    const input = el("input", "file-name-input");
    input.value = value;
    input.setAttribute("aria-label", label);
    const restore = row.cloneNode(false) as HTMLElement;
    restore.replaceChildren(...row.childNodes);
    row.replaceChildren(input);
    input.focus();
    input.setSelectionRange(value.lastIndexOf("/") + 1, value.length);
    let done = false;
    const finish = async (save: boolean): Promise<void> => {
      if (done) return;
      done = true;
      const text = input.value.trim();
      if (!save || text === "" || text === value) {
        this.render();
        return;
      }
      try {
        await commit(text);
      } catch (error) {
        this.hooks.message(error instanceof Error ? error.message : String(error), true);
        this.render();
      }
    };
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") void finish(true);
      if (ev.key === "Escape") void finish(false);
    });
    input.addEventListener("blur", () => void finish(true));
  }

  newFile(): void {
    const row = el("li", "file new-file");
    const inner = el("div", "file-row");
    row.append(inner);
    this.list.prepend(row);
    this.ask(inner, "New file's path", "", async (path) => {
      if (this.paths().includes(path)) throw new ApiError(`${path} already exists`, 409);
      const saved = await this.api.call<Answer<"project_file_put">>("PUT", `/api/projects/${this.projectId}/files/${filePath(path)}`, { content: "" } satisfies RequestBody<"project_file_put">);
      this.upsert(saved);
      this.hooks.message(`Made ${saved.path}.`);
      this.hooks.open(saved.path);
    });
  }

  private rename(_li: HTMLElement, row: HTMLElement, node: TreeNode<FileInfo>): void {
    this.ask(row, `New path for ${node.path}`, node.path, async (to) => {
      const moved = await this.api.call<Answer<"project_files_move">>("POST", `/api/projects/${this.projectId}/files-move/`, { from: node.path, to } satisfies RequestBody<"project_files_move">);
      const before = node.item ? [node.path] : filesUnder(this.paths(), node.path);
      const renamed = new Map(before.map((p) => [p, node.item ? to : to + p.slice(node.path.length)]));
      this.files = [...this.files.filter((f) => !renamed.has(f.path)), ...moved.files];
      for (const [from, target] of renamed) this.hooks.moved(from, target);
      this.render();
      this.hooks.message(`Moved ${node.path} to ${to}.`);
    });
  }

  private async remove(node: TreeNode<FileInfo>): Promise<void> {
    const doomed = node.item ? [node.path] : filesUnder(this.paths(), node.path);
    const what = node.item ? node.path : `${node.path}/ and the ${plural(doomed.length, "file")} in it`;
    if (!window.confirm(`Delete ${what}?`)) return;
    try {
      for (const path of doomed) {
        await this.api.call("DELETE", `/api/projects/${this.projectId}/files/${filePath(path)}`);
        this.files = this.files.filter((f) => f.path !== path);
        this.hooks.moved(path, null);
      }
      this.hooks.message(`Deleted ${what}.`);
    } catch (error) {
      this.hooks.message(error instanceof Error ? error.message : String(error), true);
    }
    this.render();
  }

  private async uploadFolder(input: HTMLInputElement): Promise<void> {
    const chosen = [...(input.files ?? [])];
    input.value = "";
    if (chosen.length === 0) return;
    const saved: string[] = [];
    try {
      for (const [i, file] of chosen.entries()) {
        // The folder chosen is the context: its own name is not part of the paths inside it.
        const relative = (file.webkitRelativePath || file.name).split("/").slice(1).join("/") || file.name;
        this.hooks.message(`Uploading ${i + 1} of ${chosen.length}: ${relative}…`);
        const content = toBase64(await file.arrayBuffer());
        const info = await this.api.call<Answer<"project_file_put">>("PUT", `/api/projects/${this.projectId}/files/${filePath(relative)}`, { content, encoding: "base64" } satisfies RequestBody<"project_file_put">);
        this.upsert(info);
        saved.push(info.path);
      }
      this.hooks.message(`Uploaded ${plural(saved.length, "file")}.`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.hooks.message(`Upload stopped after ${saved.length} of ${chosen.length} files: ${message}`, true);
    }
    this.hooks.replaced(saved);
  }

  private async uploadArchive(input: HTMLInputElement): Promise<void> {
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    this.hooks.message(`Uploading ${file.name}…`);
    try {
      const type = file.name.endsWith(".zip") ? "application/zip" : "application/x-tar";
      const done = await this.api.call<Answer<"project_context">>("POST", `/api/projects/${this.projectId}/context/?replace=false`, { raw: file, type });
      for (const info of done.files) this.upsert(info);
      this.hooks.message(`Added ${plural(done.files.length, "file")} from ${file.name}.`);
      this.hooks.replaced(done.files.map((f) => f.path));
    } catch (error) {
      this.hooks.message(`${file.name}: ${error instanceof Error ? error.message : String(error)}`, true);
    }
  }
}

function button(label: string, text: string, onClick: () => void): HTMLButtonElement {
  const b = el("button", "icon-button", text);
  b.type = "button";
  b.setAttribute("aria-label", label);
  b.title = label;
  b.addEventListener("click", onClick);
  return b;
}

function fileInput(folder: boolean, accept = ""): HTMLInputElement {
  const input = el("input", "visually-hidden");
  input.type = "file";
  input.tabIndex = -1;
  input.setAttribute("aria-hidden", "true");
  if (folder) {
    input.webkitdirectory = true;
    input.multiple = true;
  }
  if (accept) input.accept = accept;
  return input;
}

export function toBase64(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
