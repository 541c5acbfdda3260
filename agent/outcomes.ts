import { TaskState } from '@a2a-js/sdk';
import type { AgentError } from './errors.ts';

/**
 * The one mapping from an agent error to the A2A task state and the text the
 * caller sees (DESIGN.md, "Outcomes the agent must map").
 */

export interface Outcome {
  state: TaskState;
  text: string;
}

export function outcomeFor(error: AgentError): Outcome {
  switch (error.code) {
    case 'access_denied':
      return { state: TaskState.TASK_STATE_REJECTED, text: 'The employee denied the request.' };
    case 'expired_token':
      // The message says it timed out, and why no answer came when the backend could not be reached.
      return { state: TaskState.TASK_STATE_FAILED, text: `${error.message}.` };
    case 'not_enrolled':
      return {
        state: TaskState.TASK_STATE_FAILED,
        text: 'The employee is not enrolled for push notifications, so their approval cannot be requested.',
      };
    case 'unknown_user':
      return { state: TaskState.TASK_STATE_COMPLETED, text: 'No, that person is not an active employee of Staff0.' };
    case 'canceled':
      return { state: TaskState.TASK_STATE_CANCELED, text: 'The request was canceled.' };
    case 'backend_error':
    case 'unavailable':
    case 'request_lost':
    case 'deadline_exceeded':
    case 'interrupted':
      return { state: TaskState.TASK_STATE_FAILED, text: `${error.message}.` };
  }
}
