// A list that renders only the rows in view (plus a few), so that 10,000 devices scroll as smoothly
// as ten: rows have one fixed height, positioned by their index. Rows out of view are not in the
// page, so Tab cannot reach them: the list is one tab stop (a listbox) whose active row
// (aria-activedescendant) the arrow keys, Page Up/Down, Home and End move and scroll into view;
// Enter opens it. The rows' own links are left out of the tab order for that reason.
import { type KeyboardEvent, type ReactNode, useEffect, useId, useRef, useState } from 'react';

const OVERSCAN = 6;

/** The row a navigation key moves to (the caller clamps it), or undefined for any other key. */
function moveKey(key: string, active: number, page: number, count: number): number | undefined {
  const moves: Record<string, number> = { ArrowDown: active + 1, ArrowUp: active - 1, PageDown: active + page, PageUp: active - page, Home: 0, End: count - 1 };
  return moves[key];
}

export function VirtualList<T>({
  items,
  rowHeight,
  label,
  render,
  keyOf,
  onOpen,
}: {
  items: readonly T[];
  rowHeight: number;
  label: string;
  render: (item: T, index: number) => ReactNode;
  keyOf: (item: T) => string;
  /** Enter on the active row */
  onOpen: (item: T) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const ids = useId();
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  // by key, so that the active row stays the same device while the live list changes around it
  const [activeKey, setActiveKey] = useState<string>();
  useEffect(() => {
    const el = box.current!;
    const resize = new ResizeObserver(() => setHeight(el.clientHeight));
    resize.observe(el);
    return () => resize.disconnect();
  }, []);
  const found = activeKey === undefined ? -1 : items.findIndex((item) => keyOf(item) === activeKey);
  const active = Math.max(0, found);
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((scrollTop + height) / rowHeight) + OVERSCAN);
  const rowId = (i: number) => `${ids}-row-${i}`;

  const moveTo = (i: number) => {
    const to = Math.max(0, Math.min(items.length - 1, i));
    setActiveKey(keyOf(items[to]!));
    const el = box.current!;
    const top = Math.min(el.scrollTop, to * rowHeight);
    el.scrollTop = Math.max(top, (to + 1) * rowHeight - el.clientHeight);
    setScrollTop(el.scrollTop);
  };
  const page = Math.max(1, Math.floor(height / rowHeight) - 1);
  const onKeyDown = (e: KeyboardEvent) => {
    if (!items.length || e.altKey || e.ctrlKey || e.metaKey) return;
    const to = e.key === 'Enter' ? undefined : moveKey(e.key, active, page, items.length);
    if (to === undefined && e.key !== 'Enter') return;
    e.preventDefault();
    if (to === undefined) onOpen(items[active]!);
    else moveTo(to);
  };

  const rows: ReactNode[] = [];
  for (let i = first; i < last; i++) {
    const item = items[i]!;
    const key = keyOf(item);
    rows.push(
      <div
        key={key}
        className="vlist-row"
        id={rowId(i)}
        role="option"
        aria-selected={i === active}
        aria-setsize={items.length}
        aria-posinset={i + 1}
        style={{ top: i * rowHeight, height: rowHeight }}
        // focusable for the lint's sake only: a click makes it the active row and focuses the list itself
        tabIndex={-1}
        onMouseDown={(e) => {
          e.preventDefault();
          setActiveKey(key);
          box.current!.focus();
        }}
      >
        {render(item, i)}
      </div>,
    );
  }
  return (
    <div
      className="vlist"
      ref={box}
      onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
      data-testid="vlist"
      role="listbox"
      aria-label={label}
      tabIndex={items.length ? 0 : -1}
      onKeyDown={onKeyDown}
      aria-activedescendant={items.length && active >= first && active < last ? rowId(active) : undefined}
    >
      <div role="none" className="vlist-rows" style={{ height: items.length * rowHeight }}>
        {rows}
      </div>
    </div>
  );
}
