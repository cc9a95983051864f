// A list that renders only the rows in view (plus a few), so that 10,000 devices scroll as smoothly
// as ten: rows have one fixed height, positioned by their index.
import { type ReactNode, useEffect, useRef, useState } from 'react';

const OVERSCAN = 6;

export function VirtualList<T>({
  items,
  rowHeight,
  label,
  render,
  keyOf,
}: {
  items: readonly T[];
  rowHeight: number;
  label: string;
  render: (item: T, index: number) => ReactNode;
  keyOf: (item: T) => string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  useEffect(() => {
    const el = box.current!;
    const resize = new ResizeObserver(() => setHeight(el.clientHeight));
    resize.observe(el);
    return () => resize.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((scrollTop + height) / rowHeight) + OVERSCAN);
  const rows: ReactNode[] = [];
  for (let i = first; i < last; i++) {
    const item = items[i]!;
    rows.push(
      <li key={keyOf(item)} aria-setsize={items.length} aria-posinset={i + 1} style={{ top: i * rowHeight, height: rowHeight }}>
        {render(item, i)}
      </li>,
    );
  }
  return (
    <div className="vlist" ref={box} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)} data-testid="vlist">
      <ul aria-label={label} style={{ height: items.length * rowHeight }}>
        {rows}
      </ul>
    </div>
  );
}
