// The CLI's exit codes (README: "The bosun CLI") and the error that carries one to main.ts.

export const EXIT = {
  OK: 0,
  /** anything unexpected, a server error (5xx) */
  FAILURE: 1,
  /** bad command line */
  USAGE: 2,
  /** not logged in, or the token was refused */
  AUTH: 3,
  /** the server could not be reached */
  UNREACHABLE: 4,
  /** what the command names does not exist */
  NOT_FOUND: 5,
  /** the server refused the request (400, 409, 413): the message names the field */
  REFUSED: 6,
  /** deploy: a device failed the deployment */
  DEPLOY_FAILED: 7,
  /** exec: the command ran and reported failure */
  COMMAND_FAILED: 8,
  /** gave up waiting (--timeout) */
  TIMEOUT: 9,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
