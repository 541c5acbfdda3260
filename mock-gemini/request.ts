import { invalidArgument } from './errors.ts';

/**
 * The part of Gemini's `GenerateContentRequest` the planner reads, parsed from
 * the untrusted JSON body @google/genai posts: `contents` (multi-turn, with
 * `functionCall` / `functionResponse` parts), `systemInstruction`,
 * `tools[].functionDeclarations` and `toolConfig.functionCallingConfig`.
 * Fields the planner does not use (generationConfig, safetySettings, …) are
 * accepted and ignored, as a model would ignore settings it does not need.
 */

export type Part =
  | { kind: 'text'; text: string }
  | { kind: 'functionCall'; name: string; args: Record<string, unknown> }
  | { kind: 'functionResponse'; name: string; response: Record<string, unknown> }
  /** inlineData, fileData, thoughts, …: present, but nothing to plan from. */
  | { kind: 'other' };

export interface Turn {
  /** `function` turns (an older SDK convention for function results) count as `user`. */
  role: 'user' | 'model';
  parts: Part[];
}

export type FunctionCallingMode = 'AUTO' | 'ANY' | 'NONE' | 'VALIDATED';

export interface GenerateContentRequest {
  contents: Turn[];
  systemInstruction: string | undefined;
  /** Every function declared in `tools`, in order. */
  declaredFunctions: string[];
  /** The functions the model may call: declared, allowed by `toolConfig`, not disabled by mode NONE. */
  callableFunctions: Set<string>;
  mode: FunctionCallingMode;
}

const MODES: readonly FunctionCallingMode[] = ['AUTO', 'ANY', 'NONE', 'VALIDATED'];
/** Gemini's own rule for function names: start with a letter or underscore, at most 64 of [a-zA-Z0-9_.:-]. */
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;
const MAX_TURNS = 1000;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  return typeof value;
}

function functionName(value: unknown, where: string): string {
  if (typeof value !== 'string' || !FUNCTION_NAME.test(value)) {
    throw invalidArgument(`* GenerateContentRequest.${where}: Invalid function name. Must start with a letter or an underscore, followed by at most 63 letters, digits, underscores, dots, colons or dashes.`);
  }
  return value;
}

function parsePart(raw: unknown, where: string): Part {
  if (!isObject(raw)) throw invalidArgument(`Invalid value at '${where}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Part), ${describe(raw)}`);
  if ('text' in raw) {
    if (typeof raw.text !== 'string') throw invalidArgument(`Invalid value at '${where}.text' (TYPE_STRING), ${describe(raw.text)}`);
    return raw.thought === true ? { kind: 'other' } : { kind: 'text', text: raw.text };
  }
  if ('functionCall' in raw) {
    const call = raw.functionCall;
    if (!isObject(call)) throw invalidArgument(`Invalid value at '${where}.function_call', ${describe(call)}`);
    const args = call.args ?? {};
    if (!isObject(args)) throw invalidArgument(`Invalid value at '${where}.function_call.args' (type.googleapis.com/google.protobuf.Struct), ${describe(args)}`);
    return { kind: 'functionCall', name: functionName(call.name, `${where}.function_call.name`), args };
  }
  if ('functionResponse' in raw) {
    const result = raw.functionResponse;
    if (!isObject(result)) throw invalidArgument(`Invalid value at '${where}.function_response', ${describe(result)}`);
    const response = result.response ?? {};
    if (!isObject(response)) {
      throw invalidArgument(`Invalid value at '${where}.function_response.response' (type.googleapis.com/google.protobuf.Struct), ${describe(response)}`);
    }
    return { kind: 'functionResponse', name: functionName(result.name, `${where}.function_response.name`), response };
  }
  return { kind: 'other' };
}

function parseTurn(raw: unknown, where: string): Turn {
  if (!isObject(raw)) throw invalidArgument(`Invalid value at '${where}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), ${describe(raw)}`);
  const role = raw.role ?? 'user';
  if (role !== 'user' && role !== 'model' && role !== 'function') {
    throw invalidArgument('Please use a valid role: user, model.');
  }
  if (!Array.isArray(raw.parts) || raw.parts.length === 0) {
    throw invalidArgument(`* GenerateContentRequest.${where}.parts: contents.parts must not be empty.`);
  }
  return { role: role === 'model' ? 'model' : 'user', parts: raw.parts.map((part, i) => parsePart(part, `${where}.parts[${i}]`)) };
}

function parseSystemInstruction(raw: unknown): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === 'string') return raw;
  if (!isObject(raw) || !Array.isArray(raw.parts)) {
    throw invalidArgument(`Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), ${describe(raw)}`);
  }
  return raw.parts
    .map((part, i) => parsePart(part, `system_instruction.parts[${i}]`))
    .flatMap((part) => (part.kind === 'text' ? [part.text] : []))
    .join('\n');
}

function parseDeclaredFunctions(raw: unknown): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalidArgument(`Invalid value at 'tools' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool), ${describe(raw)}`);
  const names: string[] = [];
  raw.forEach((tool, t) => {
    if (!isObject(tool)) throw invalidArgument(`Invalid value at 'tools[${t}]' (type.googleapis.com/google.ai.generativelanguage.v1beta.Tool), ${describe(tool)}`);
    const declarations = tool.functionDeclarations ?? [];
    if (!Array.isArray(declarations)) throw invalidArgument(`Invalid value at 'tools[${t}].function_declarations', ${describe(declarations)}`);
    declarations.forEach((declaration, d) => {
      const where = `tools[${t}].function_declarations[${d}]`;
      if (!isObject(declaration)) throw invalidArgument(`Invalid value at '${where}', ${describe(declaration)}`);
      const name = functionName(declaration.name, `${where}.name`);
      if (names.includes(name)) throw invalidArgument(`* GenerateContentRequest.${where}.name: Duplicate function declaration name: ${name}`);
      names.push(name);
    });
  });
  return names;
}

function parseToolConfig(raw: unknown): { mode: FunctionCallingMode; allowed: string[] | undefined } {
  if (raw === undefined || raw === null) return { mode: 'AUTO', allowed: undefined };
  if (!isObject(raw)) throw invalidArgument(`Invalid value at 'tool_config', ${describe(raw)}`);
  const config = raw.functionCallingConfig ?? {};
  if (!isObject(config)) throw invalidArgument(`Invalid value at 'tool_config.function_calling_config', ${describe(config)}`);
  const mode = config.mode ?? 'AUTO';
  if (!MODES.includes(mode as FunctionCallingMode)) {
    throw invalidArgument(`Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "${String(mode).slice(0, 40)}"`);
  }
  const allowedRaw = config.allowedFunctionNames;
  if (allowedRaw === undefined || allowedRaw === null) return { mode: mode as FunctionCallingMode, allowed: undefined };
  if (!Array.isArray(allowedRaw)) throw invalidArgument(`Invalid value at 'tool_config.function_calling_config.allowed_function_names', ${describe(allowedRaw)}`);
  const allowed = allowedRaw.map((name, i) => functionName(name, `tool_config.function_calling_config.allowed_function_names[${i}]`));
  return { mode: mode as FunctionCallingMode, allowed };
}

export function parseGenerateContentRequest(body: unknown): GenerateContentRequest {
  if (!isObject(body)) throw invalidArgument(`Invalid JSON payload received. Expected an object, got ${describe(body)}.`);
  const rawContents = body.contents;
  if (rawContents === undefined || rawContents === null || (Array.isArray(rawContents) && rawContents.length === 0)) {
    throw invalidArgument('* GenerateContentRequest.contents: contents is not specified');
  }
  if (!Array.isArray(rawContents)) throw invalidArgument(`Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), ${describe(rawContents)}`);
  if (rawContents.length > MAX_TURNS) throw invalidArgument(`* GenerateContentRequest.contents: at most ${MAX_TURNS} turns are supported`);
  const contents = rawContents.map((turn, i) => parseTurn(turn, `contents[${i}]`));
  const systemInstruction = parseSystemInstruction(body.systemInstruction);
  const declaredFunctions = parseDeclaredFunctions(body.tools);
  const { mode, allowed } = parseToolConfig(body.toolConfig);
  if (allowed !== undefined && mode !== 'ANY' && mode !== 'VALIDATED') {
    throw invalidArgument('* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: allowed_function_names may only be set when mode is ANY or VALIDATED.');
  }
  const callableFunctions = new Set(
    mode === 'NONE' ? [] : declaredFunctions.filter((name) => allowed === undefined || allowed.includes(name)),
  );
  return { contents, systemInstruction, declaredFunctions, callableFunctions, mode };
}
