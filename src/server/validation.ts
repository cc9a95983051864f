// The server's one request validator (app.ts sets it for every route), on TypeBox's own checker:
// bodies exactly as the schema says (no coercion: Ajv's would turn a one-item list into a string, or
// back, inside the unions startup_parameters allows, and a null into "" or 0), path, query and
// header values converted from strings. Errors take Ajv's shape, so the server's one error mapping
// (httpErrors.ts) names the field, an unknown one as `…/name: unknown field`.
import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import { deepest } from '../shared/validate.js';

export const typeBoxCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const checker = TypeCompiler.Compile(schema);
  return (value: unknown) => {
    const converted = httpPart === 'body' ? value : Value.Convert(schema, value);
    if (checker.Check(converted)) return { value: converted };
    return { error: [ajvShaped(deepest(checker.Errors(converted).First()!))] };
  };
};

function ajvShaped(e: ValueError): FastifySchemaValidationError {
  if (e.type === ValueErrorType.ObjectAdditionalProperties) {
    const slash = e.path.lastIndexOf('/');
    const key = e.path
      .slice(slash + 1)
      .replace(/~1/g, '/')
      .replace(/~0/g, '~');
    return {
      keyword: 'additionalProperties',
      instancePath: e.path.slice(0, slash),
      schemaPath: '',
      params: { additionalProperty: key },
      message: 'unknown field',
    };
  }
  return { keyword: ValueErrorType[e.type] ?? 'invalid', instancePath: e.path, schemaPath: '', params: {}, message: e.message };
}

// `format: 'date-time'` as fastify's Ajv checked it (ajv-formats, full mode): RFC 3339, time zone required.
const DATE_TIME = /^(\d\d\d\d)-(\d\d)-(\d\d)[t\s](\d\d):(\d\d):(\d\d(?:\.\d+)?)(?:z|([+-])(\d\d)(?::?(\d\d))?)$/i;
const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
FormatRegistry.Set('date-time', (s) => {
  const m = DATE_TIME.exec(s);
  if (!m) return false;
  const [year, month, day, hr, min, sec, tzH, tzM] = [m[1], m[2], m[3], m[4], m[5], m[6], m[8], m[9]].map((x) => Number(x ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12 || day < 1 || day > (month === 2 && leap ? 29 : DAYS[month]!) || tzH > 23 || tzM > 59) return false;
  if (hr <= 23 && min <= 59 && sec < 60) return true;
  // a leap second: 23:59:60 UTC
  const sign = m[7] === '-' ? -1 : 1;
  const utcMin = min - tzM * sign;
  const utcHr = hr - tzH * sign - (utcMin < 0 ? 1 : 0);
  return (utcHr === 23 || utcHr === -1) && (utcMin === 59 || utcMin === -1) && sec < 61;
});
