"""The synthetic leasing company: source tables in the schema of `features.schema`, with a manifest.

`tenure data generate` writes them; tests, notebooks, benchmarks and the demo call
`generate_dataset` (to a folder) or `generate_tables` (in memory). Only the data leaves this
package: the stages read the written files like a company's own extracts, and the service never
imports it (an import-linter contract; the Bento does not pack it).

- `dataset`: the public entry points, chunked generation and atomic, deterministic writing;
- `simulation`: the month-by-month simulation of customers, leases and every event table;
- `priors`: who the customers are, what they lease, how they behave;
- `scenarios`: the shifts of behaviour in the last months (`baseline`, `downturn`, `competitor`);
- `personal`: fake but plausible names, phones, national ids and addresses.
"""

from features.synthetic.dataset import (
    GENERATOR,
    GENERATOR_VERSION,
    GenerateError,
    end_date,
    generate_dataset,
    generate_tables,
    write_table,
)
from features.synthetic.scenarios import SCENARIOS, Scenario, scenario_info

__all__ = [
    "GENERATOR",
    "GENERATOR_VERSION",
    "SCENARIOS",
    "GenerateError",
    "Scenario",
    "end_date",
    "generate_dataset",
    "generate_tables",
    "scenario_info",
    "write_table",
]
