import { customAlphabet } from "nanoid";

// Ids look like Arroyo's (pl_W2UjDI6Iud, job_Tqkow4Uc4x): a prefix and 10 letters or digits.
const random = customAlphabet("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 10);
export const newId = (prefix: string) => `${prefix}_${random()}`;
export const nowMicros = () => Date.now() * 1000;
