// Form fields that show the API's error next to themselves: a 400's `field` is a JSON pointer
// (/containers/0/image), matched to the field whose `name` is that pointer.
import type { ReactNode } from 'react';
import { ApiError } from './api';

export interface FormError {
  message: string;
  /** a JSON pointer, when the API named the field */
  field?: string;
}

export const formError = (err: unknown): FormError =>
  err instanceof ApiError && err.field ? { message: err.message, field: err.field } : { message: (err as Error).message };

/**
 * The error for `pointer`: this field's own, or one inside it (e.g. /containers/0/startup_parameters/…);
 * `/compose` also takes the compose file's own paths (services.web.ports[1]).
 */
export const errorAt = (e: FormError | null, pointer: string) =>
  e?.field && (e.field === pointer || e.field.startsWith(`${pointer}/`) || (pointer === '/compose' && /^(services|volumes|networks|compose)\b/.test(e.field)))
    ? e.message
    : undefined;

export function Field({
  label,
  pointer,
  error,
  children,
  hint,
  scope = '',
}: {
  label: string;
  pointer: string;
  error: FormError | null;
  children: (aria: object) => ReactNode;
  hint?: string;
  /** tells apart forms on one page that have the same fields */
  scope?: string;
}) {
  const message = errorAt(error, pointer);
  const id = `f${scope && `-${scope}`}-${pointer.replace(/[^a-z0-9]/gi, '-')}`;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, ...(message ? { 'aria-invalid': true, 'aria-describedby': `${id}-error` } : {}) })}
      {hint && <small className="hint">{hint}</small>}
      {message && (
        <small className="error" id={`${id}-error`}>
          {message}
        </small>
      )}
    </div>
  );
}

/** The error no field took, shown above the form's button. */
export function FormAlert({ error, pointers }: { error: FormError | null; pointers: string[] }) {
  if (!error || pointers.some((p) => errorAt(error, p))) return null;
  return (
    <p className="error" role="alert">
      {error.field ? `${error.field}: ` : ''}
      {error.message}
    </p>
  );
}
