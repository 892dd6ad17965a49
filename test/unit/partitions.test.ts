import { assignedPartitions, checkPartitionCount, OutboxErrorCode, partitionCheckpointName, partitionOf } from '../../domain/outbox';

describe('partitions of the outbox', () => {
  test('a key always hashes to the same partition, FNV-1a over its UTF-8 bytes', () => {
    // Arrange: FNV-1a 32-bit of "a" is 0xe40c292c, of "" the offset basis 0x811c9dc5.
    const cases: Array<[string, number, number]> = [
      ['a', 2 ** 32 - 1, 0xe40c292c % (2 ** 32 - 1)],
      ['', 1000, 0x811c9dc5 % 1000],
    ];

    // Act + Assert
    for (const [key, count, expected] of cases) expect(partitionOf(key, count)).toBe(expected);
    expect(partitionOf('order-42', 16)).toBe(partitionOf('order-42', 16));
    expect(partitionOf('é', 1024)).not.toBe(partitionOf('e', 1024));
  });

  test('keys spread over every partition', () => {
    // Act
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) {
      const p = partitionOf(`order-${i}`, 16);
      counts[p] = (counts[p] ?? 0) + 1;
    }

    // Assert: each partition within 10% of its fair share.
    for (const n of counts) expect(Math.abs(n - 1000)).toBeLessThan(100);
  });

  test('each live member gets every M-th partition, all partitions once, the same on every member', () => {
    // Arrange
    const members = ['relay-a', 'relay-b', 'relay-c'];

    // Act
    const shares = members.map((m) => assignedPartitions(members, m, 8));

    // Assert
    expect(shares).toEqual([[0, 3, 6], [1, 4, 7], [2, 5]]);
    expect(assignedPartitions(members, 'relay-gone', 8)).toEqual([]);
    expect(assignedPartitions(['relay-a'], 'relay-a', 3)).toEqual([0, 1, 2]);
  });

  test('bad input: a partition count outside 1..1024 is refused with INVALID_CONFIG', () => {
    for (const bad of [0, -1, 1.5, 1025, Number.NaN, '16']) {
      expect(() => checkPartitionCount(bad)).toThrow(expect.objectContaining({ code: OutboxErrorCode.invalidConfig }));
    }
    expect(checkPartitionCount(1024)).toBe(1024);
    expect(partitionCheckpointName('relay', 3)).toBe('relay#p3');
  });
});
