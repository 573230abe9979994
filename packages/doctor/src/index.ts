export { runDoctor, type DoctorCheck, type CheckStatus } from "./doctor.ts";
