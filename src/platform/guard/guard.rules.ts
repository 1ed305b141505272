import type { ConfigAgent } from "../config/config.agent";
import type { Guard, GuardRuleSet } from "./guard";
import { GuardRules } from "./guard.domain";

/**
 * The guard's rules live in the config centre, group `guard`: `flow-rules`, `degrade-rules`,
 * `param-rules`, `system-rules`, each a JSON array in Sentinel's shape. Every node watches them and
 * swaps its rule set when any changes.
 */
export function watchGuardRules(configs: ConfigAgent, guard: Guard): void {
  const handles = {
    flow: configs.watch("guard", "guard", "flow-rules", GuardRules.flow, []),
    degrade: configs.watch("guard", "guard", "degrade-rules", GuardRules.degrade, []),
    param: configs.watch("guard", "guard", "param-rules", GuardRules.param, []),
    system: configs.watch("guard", "guard", "system-rules", GuardRules.system, []),
  };
  const apply = () => {
    const rules: GuardRuleSet = { flow: handles.flow.value, degrade: handles.degrade.value, param: handles.param.value, system: handles.system.value };
    guard.load(rules);
  };
  for (const handle of Object.values(handles)) handle.onChange(apply);
  apply();
}
