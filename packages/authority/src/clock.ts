// Time lives in @pki/base, which keyless processes load without this package.
export { type Clock, systemClock } from "@pki/base";
