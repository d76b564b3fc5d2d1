// Runs a generated ELM library with the reference CQL engine (cql-execution, cql-exec-fhir)
// over FHIR patient bundles and prints each define's value per patient, as JSON.
// Input (stdin): {"elm": {...}, "defines": ["name", ...],
//                 "patients": [{"bundle": {...}, "serviceDate": "YYYY-MM-DD",
//                               "orderId": "the order's MedicationRequest id" (optional)}]}
// Output (stdout): [{"define": value, ...}, ...] in the patients' order, for the defines named.
'use strict';
const cql = require('cql-execution');
const cqlfhir = require('cql-exec-fhir');

function plain(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') {
    return value;
  }
  if (value.isDate || value.isDateTime) return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value.toJSON === 'function') return value.toJSON();
  return String(value);
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const library = new cql.Library(input.elm);
  const results = [];
  // One source for all: reading FHIR's model info is most of the cost of making one.
  const source = cqlfhir.PatientSource.FHIRv401();
  for (const patient of input.patients) {
    source.reset();
    source.loadBundles([patient.bundle]);
    const parameters = { ServiceDate: cql.Date.parse(patient.serviceDate) };
    if (patient.orderId !== undefined) parameters.OrderId = patient.orderId;
    const executor = new cql.Executor(library, new cql.CodeService({}), parameters);
    const outcome = await executor.exec(source);
    const byPatient = Object.values(outcome.patientResults)[0] || {};
    const values = {};
    for (const name of input.defines) {
      values[name] = plain(byPatient[name]);
    }
    results.push(values);
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + '\n');
  process.exit(1);
});
