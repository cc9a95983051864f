// A small history router: the server answers every page of the dashboard with index.html.
import { type MouseEvent, type ReactNode, useSyncExternalStore } from 'react';

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => {
  for (const l of listeners) l();
});

export function navigate(to: string): void {
  history.pushState(null, '', to);
  for (const l of listeners) l();
}

export function usePath(): string {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => location.pathname,
  );
}

export function Link({ to, children, className, tabIndex }: { to: string; children: ReactNode; className?: string; tabIndex?: number }) {
  const go = (e: MouseEvent) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={go} className={className} tabIndex={tabIndex} aria-current={location.pathname === to ? 'page' : undefined}>
      {children}
    </a>
  );
}
