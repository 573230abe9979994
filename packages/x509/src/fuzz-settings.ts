// The fuzz properties' case count and seed, from the configuration module.
import { fuzzSettings } from "@pki/config";

export const FUZZ = fuzzSettings();
